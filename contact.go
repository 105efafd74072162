package herald

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ContactImportRow is one row of a contact import: a chat and one purpose's
// legal basis. A contact with several purposes appears in several rows.
type ContactImportRow struct {
	ChatID      string     `json:"chat_id"`
	Username    string     `json:"username,omitempty"` // optional public @username of the person
	Timezone    string     `json:"timezone,omitempty"`
	Language    string     `json:"language,omitempty"`
	Purpose     string     `json:"purpose"`
	LegalBasis  string     `json:"legal_basis"`
	Source      string     `json:"source"`
	ConsentedAt *time.Time `json:"consented_at,omitempty"`
	// Tags are added to the contact's tags; Attributes set its attributes
	// (template variables). CSV: a "tags" column (";"-separated) and one
	// "attr.<name>" column per attribute.
	Tags       []string          `json:"tags,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

var (
	// A chat is a Bot API id ("123", "-100…"), a public @username, or an
	// MTProto peer with its access hash ("user:<id>:<hash>",
	// "channel:<id>:<hash>", "chat:<id>"): user accounts cannot address a
	// bare numeric id.
	chatIDPattern   = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}|(user|channel):[0-9]{1,20}:-?[0-9]{1,20}|chat:[0-9]{1,20})$`)
	usernamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{3,31}$`)
	languagePattern = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)
)

// ValidChatID reports whether s names a Telegram chat Herald can address.
func ValidChatID(s string) bool { return chatIDPattern.MatchString(s) }

// ValidUsername reports whether s is a Telegram user name, with or without
// its leading "@".
func ValidUsername(s string) bool {
	return usernamePattern.MatchString(strings.TrimPrefix(s, "@"))
}

// NormalizeUsername is the stored form of a user name: lower case (Telegram
// user names are case-insensitive), without "@".
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimPrefix(s, "@")) }

// ValidTimezone reports whether tz is an IANA zone name Go can load.
func ValidTimezone(tz string) bool {
	if tz == "" || strings.ContainsAny(tz, " .") && !strings.Contains(tz, "/") {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil && tz != "Local"
}

// ValidLanguage reports whether s looks like a BCP 47 language tag.
func ValidLanguage(s string) bool { return languagePattern.MatchString(s) }

// Validate returns the row's field errors, with Row set to row (1-based).
func (r ContactImportRow) Validate(row int) []FieldError {
	var fe []FieldError
	add := func(field, msg string) {
		n := row
		fe = append(fe, FieldError{Field: field, Message: msg, Row: &n})
	}
	if !ValidChatID(r.ChatID) {
		add("chat_id", "must be a Telegram chat id or @username")
	}
	if r.Username != "" && !ValidUsername(r.Username) {
		add("username", "must be a Telegram @username (5–32 letters, digits or _)")
	}
	if r.Timezone != "" && !ValidTimezone(r.Timezone) {
		add("timezone", fmt.Sprintf("unknown time zone %q", r.Timezone))
	}
	if r.Language != "" && !ValidLanguage(r.Language) {
		add("language", "must be a language tag such as \"en\" or \"pt-BR\"")
	}
	if !ValidPurpose(r.Purpose) {
		add("purpose", "must be one of marketing, transactional, support, service")
	}
	if r.LegalBasis == "" {
		add("legal_basis", "is required: consent, legitimate_interest or contract")
	} else if !ValidBasis(r.LegalBasis) {
		add("legal_basis", "must be consent, legitimate_interest or contract")
	}
	if strings.TrimSpace(r.Source) == "" {
		add("source", "is required: where the legal basis comes from (a form, a contract, …)")
	} else if len(r.Source) > 500 {
		add("source", "must be at most 500 characters")
	}
	r.validateLabels(add)
	return fe
}

func (r ContactImportRow) validateLabels(add func(field, msg string)) {
	if len(r.Tags) > MaxLabels {
		add("tags", fmt.Sprintf("at most %d tags", MaxLabels))
	}
	for i, t := range r.Tags {
		if !ValidTag(t) {
			add(fmt.Sprintf("tags[%d]", i), "must be a tag (1–64 characters, no commas, semicolons or control characters)")
		}
	}
	if len(r.Attributes) > MaxLabels {
		add("attributes", fmt.Sprintf("at most %d attributes", MaxLabels))
	}
	for k, v := range r.Attributes {
		if !ValidAttributeName(k) {
			add("attributes."+k, "must be a lowercase name (a-z, 0-9, _)")
		} else if !ValidAttributeValue(v) {
			add("attributes."+k, "must be at most 1024 characters of text")
		}
	}
}
