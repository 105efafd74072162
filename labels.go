package herald

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Contact labels: tags (for segments) and attributes (template variables
// such as first_name). Attributes are personal data.

var attributeNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ValidAttributeName reports whether name can be a contact attribute (and
// so a template variable).
func ValidAttributeName(name string) bool { return attributeNamePattern.MatchString(name) }

// ValidAttributeValue reports whether s can be an attribute value: at most
// 1,024 bytes of valid UTF-8 without NUL.
func ValidAttributeValue(s string) bool {
	return len(s) <= 1024 && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// ValidTag reports whether s can be a contact tag: 1–64 bytes of visible
// text without commas, semicolons (the CSV list separator) or control
// characters, and no surrounding spaces.
func ValidTag(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ',' || r == ';' {
			return false
		}
	}
	return true
}

// MaxLabels bounds a contact's tags and its attributes (each).
const MaxLabels = 100
