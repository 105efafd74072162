// Package render validates an action's content against Telegram's limits
// and formatting rules before anything is decided or stored, and reduces it
// to the statistics policies judge (length, links, caps ratio, …). It is the
// pipeline's render stage: a dry run and a real submit render identically.
package render

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf16"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
)

// Telegram's limits, counted in UTF-16 code units after entity parsing, as
// the Bot API counts them.
const (
	MaxTextLength    = 4096
	MaxCaptionLength = 1024
	MaxURLLength     = 2048
)

// Parse modes Herald accepts. The legacy "Markdown" mode is refused: it
// cannot express every entity and Telegram keeps it for compatibility only.
const (
	ParseModeNone       = ""
	ParseModeMarkdownV2 = "MarkdownV2"
	ParseModeHTML       = "HTML"
)

// Rendered is validated content ready for policy and delivery.
type Rendered struct {
	Content herald.Content `json:"content"`
	// Plain is the text (or caption) as the recipient will see it, with
	// formatting removed. It is personal data: previews only, never logs.
	Plain string                `json:"plain"`
	Stats policies.ContentStats `json:"stats"`
}

// Render validates c for an action of kind and returns its statistics, or a
// validation error whose fields name every problem.
func Render(kind string, c herald.Content) (Rendered, error) {
	var fe []herald.FieldError
	add := func(field, format string, args ...any) {
		fe = append(fe, herald.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	r := Rendered{Content: c}
	body, bodyField, limit := "", "", 0
	switch kind {
	case herald.KindSendMessage, herald.KindPostToChannel, herald.KindEditMessage:
		body, bodyField, limit = c.Text, "text", MaxTextLength
		if strings.TrimSpace(c.Text) == "" {
			add("text", "is required for %s", kind)
		}
		if c.PhotoURL != "" || c.PhotoFileID != "" || c.Caption != "" {
			add("kind", "%s carries text only; use send_photo for media", kind)
		}
		if kind == herald.KindEditMessage && c.MessageID <= 0 {
			add("message_id", "is required: the id of the message to edit")
		}
		if kind != herald.KindEditMessage && c.MessageID != 0 {
			add("message_id", "is only valid for edit_message, delete_message, pin_message and unpin_message")
		}
	case herald.KindSendPhoto:
		body, bodyField, limit = c.Caption, "caption", MaxCaptionLength
		r.Stats.HasMedia = true
		switch {
		case c.PhotoURL == "" && c.PhotoFileID == "":
			add("photo_url", "send_photo needs photo_url or photo_file_id")
		case c.PhotoURL != "" && c.PhotoFileID != "":
			add("photo_url", "give photo_url or photo_file_id, not both")
		case c.PhotoURL != "":
			if u, err := url.Parse(c.PhotoURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				add("photo_url", "must be an http(s) URL")
			} else if len(c.PhotoURL) > MaxURLLength {
				add("photo_url", "must be at most %d characters", MaxURLLength)
			}
		}
		if c.Text != "" {
			add("text", "send_photo has a caption, not a text")
		}
		if c.MessageID != 0 {
			add("message_id", "is only valid for edit_message, delete_message, pin_message and unpin_message")
		}
	case herald.KindEditCaption:
		body, bodyField, limit = c.Caption, "caption", MaxCaptionLength
		if strings.TrimSpace(c.Caption) == "" {
			add("caption", "is required for %s", kind)
		}
		if c.MessageID <= 0 {
			add("message_id", "is required: the id of the message whose caption to edit")
		}
		if c.Text != "" || c.PhotoURL != "" || c.PhotoFileID != "" {
			add("kind", "%s carries a caption only", kind)
		}
	case herald.KindDeleteMessage, herald.KindPinMessage, herald.KindUnpinMessage:
		if c.MessageID <= 0 {
			add("message_id", "is required: the id of the message to %s", strings.TrimSuffix(kind, "_message"))
		}
		if c.Text != "" || c.Caption != "" || c.PhotoURL != "" || c.PhotoFileID != "" {
			add("kind", "%s carries no text or media", kind)
		}
		r.Stats.IsEditOnly = true
	default:
		add("kind", "must be one of %s", strings.Join(herald.Kinds, ", "))
		return r, herald.Invalid(fe...)
	}
	if body != "" || c.ParseMode != "" {
		plain, links, err := parse(c.ParseMode, body)
		if err != nil {
			field := bodyField
			if _, ok := err.(parseModeError); ok {
				field = "parse_mode"
			}
			add(field, "%v", err)
		} else {
			if n := utf16Len(plain); n > limit {
				add(bodyField, "is %d characters after formatting; Telegram allows at most %d", n, limit)
			}
			r.Plain = plain
			r.Stats = stats(plain, links, r.Stats)
			r.Stats.ParseMode = c.ParseMode
		}
	}
	if len(fe) > 0 {
		return r, herald.Invalid(fe...)
	}
	return r, nil
}

type parseModeError struct{ mode string }

func (e parseModeError) Error() string {
	return fmt.Sprintf("unsupported parse mode %q: use \"MarkdownV2\", \"HTML\" or none", e.mode)
}

func parse(mode, s string) (plain string, links []string, err error) {
	switch mode {
	case ParseModeNone:
		return s, nil, nil
	case ParseModeMarkdownV2:
		return parseMarkdownV2(s)
	case ParseModeHTML:
		return parseHTML(s)
	}
	return "", nil, parseModeError{mode}
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

var urlPattern = regexp.MustCompile(`(?i)\b((?:https?://|www\.)[^\s<>"']+|[a-z0-9-]+\.(?:ly|gl|gd|co|to|me|link|cc|io|is|at)/[^\s<>"']+)`)

// shorteners are link-shortening domains: hiding a destination is a classic
// spam signal and a risk factor.
var shorteners = map[string]bool{
	"bit.ly": true, "tinyurl.com": true, "t.co": true, "goo.gl": true, "ow.ly": true, "is.gd": true,
	"buff.ly": true, "cutt.ly": true, "rebrand.ly": true, "shorturl.at": true, "tiny.cc": true,
	"rb.gy": true, "s.id": true, "v.gd": true, "clck.ru": true, "t.ly": true, "bl.ink": true,
}

// stats computes the policy-facing statistics of plain text plus explicit links.
func stats(plain string, links []string, s policies.ContentStats) policies.ContentStats {
	s.Length = utf16Len(plain)
	all := append(urlPattern.FindAllString(plain, -1), links...)
	domains := map[string]bool{}
	for _, l := range all {
		s.Links++
		d := domainOf(l)
		if d == "" {
			continue
		}
		domains[d] = true
		if shorteners[d] {
			s.Shortened++
		}
	}
	s.Domains = make([]string, 0, len(domains))
	for d := range domains {
		s.Domains = append(s.Domains, d)
	}
	sort.Strings(s.Domains)
	// Caps are judged on the words, not on the links in between.
	letters, upper := 0, 0
	for _, r := range urlPattern.ReplaceAllString(plain, " ") {
		if unicode.IsLetter(r) {
			letters++
			if unicode.IsUpper(r) {
				upper++
			}
		}
	}
	s.Exclaims = strings.Count(plain, "!")
	s.Mentions = strings.Count(plain, "@")
	if letters > 0 {
		s.CapsRatio = float64(int(float64(upper)/float64(letters)*1000)) / 1000
	}
	return s
}

func domainOf(link string) string {
	if !strings.Contains(link, "://") {
		link = "http://" + link
	}
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}
