package render

import (
	"fmt"
	"html"
	"regexp"
	"strings"
)

// htmlTags are the tags Telegram's HTML parse mode accepts, with the
// attribute each requires ("" = none).
var htmlTags = map[string]string{
	"b": "", "strong": "", "i": "", "em": "", "u": "", "ins": "", "s": "", "strike": "", "del": "",
	"tg-spoiler": "", "span": "class", "a": "href", "tg-emoji": "emoji-id", "code": "", "pre": "", "blockquote": "",
}

var (
	htmlTagPattern    = regexp.MustCompile(`^<(/?)([a-z-]+)((?:\s+[a-z-]+(?:="[^"]*"|='[^']*')?)*)\s*>`)
	htmlAttrPattern   = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)"|='([^']*)')?`)
	htmlEntityPattern = regexp.MustCompile(`^&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});`)
)

// parseHTML checks s against Telegram's HTML parse mode and returns the
// visible text and the hrefs of links.
func parseHTML(s string) (string, []string, error) {
	var (
		out   strings.Builder
		links []string
		stack []string
	)
	errAt := func(i int, format string, args ...any) error {
		return fmt.Errorf("HTML: "+format+" (at byte %d)", append(args, i+1)...)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			m := htmlTagPattern.FindStringSubmatch(s[i:])
			if m == nil {
				return "", nil, errAt(i, "'<' must start a supported tag or be written &lt;")
			}
			closing, name, attrs := m[1] == "/", m[2], m[3]
			required, ok := htmlTags[name]
			if !ok {
				return "", nil, errAt(i, "tag <%s> is not supported by Telegram", name)
			}
			if closing {
				if n := len(stack); n == 0 || stack[n-1] != name {
					return "", nil, errAt(i, "closing tag </%s> does not match an open tag", name)
				}
				stack = stack[:len(stack)-1]
			} else {
				got := map[string]string{}
				for _, a := range htmlAttrPattern.FindAllStringSubmatch(attrs, -1) {
					got[a[1]] = html.UnescapeString(a[2] + a[3])
				}
				if required != "" && got[required] == "" {
					return "", nil, errAt(i, "tag <%s> needs a %s attribute", name, required)
				}
				if name == "span" && got["class"] != "tg-spoiler" {
					return "", nil, errAt(i, `only <span class="tg-spoiler"> is supported`)
				}
				if name == "a" {
					links = append(links, got["href"])
				}
				stack = append(stack, name)
			}
			i += len(m[0])
		case '&':
			m := htmlEntityPattern.FindString(s[i:])
			if m == "" {
				return "", nil, errAt(i, "'&' must start an entity (&lt; &gt; &amp; &quot; or numeric) or be written &amp;")
			}
			out.WriteString(html.UnescapeString(m))
			i += len(m)
		case '>':
			return "", nil, errAt(i, "'>' must be written &gt;")
		default:
			out.WriteByte(s[i])
			i++
		}
	}
	if len(stack) > 0 {
		return "", nil, fmt.Errorf("HTML: tag <%s> is opened but never closed", stack[len(stack)-1])
	}
	return out.String(), links, nil
}
