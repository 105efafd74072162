package campaigns

import (
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/render"
)

// Template is a campaign's message: text, or a photo with a caption, with
// {{variable}} placeholders filled per recipient from their contact
// attributes.
type Template struct {
	Text        string `json:"text,omitempty"`
	ParseMode   string `json:"parse_mode,omitempty"`
	PhotoURL    string `json:"photo_url,omitempty"`
	PhotoFileID string `json:"photo_file_id,omitempty"`
	Caption     string `json:"caption,omitempty"`
}

// placeholder matches {{name}} with optional inner spaces. Names are
// attribute names.
var placeholder = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// ValidAttributeName reports whether name can be an attribute and a template variable.
func ValidAttributeName(name string) bool { return herald.ValidAttributeName(name) }

// Variables lists the template's variable names, in first-use order.
func (t Template) Variables() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range []string{t.Text, t.Caption} {
		for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	return out
}

// Validate checks the template's shape: variable names, and that the
// template renders as a valid Telegram message when every variable holds a
// harmless sample value (so a template error is found once, at creation,
// not once per recipient).
func (t Template) Validate(kind string) []herald.FieldError {
	var fe []herald.FieldError
	for _, v := range t.Variables() {
		if !ValidAttributeName(v) {
			fe = append(fe, herald.FieldError{Field: "template", Message: fmt.Sprintf("variable {{%s}} must be a lowercase attribute name", v)})
		}
	}
	if len(fe) > 0 {
		return fe
	}
	sample := map[string]string{}
	for _, v := range t.Variables() {
		sample[v] = "x"
	}
	c, _ := t.Fill(sample)
	if _, err := render.Render(kind, c); err != nil {
		var he *herald.Error
		if errors.As(err, &he) {
			for _, f := range he.Fields {
				f.Field = "template." + f.Field
				fe = append(fe, f)
			}
		} else {
			fe = append(fe, herald.FieldError{Field: "template", Message: err.Error()})
		}
	}
	return fe
}

// Fill substitutes vars into the template, each value escaped for the
// template's parse mode, and returns the content and the names of the
// variables vars lacks (the content is then not to be sent).
func (t Template) Fill(vars map[string]string) (herald.Content, []string) {
	var missing []string
	fill := func(s string) string {
		return placeholder.ReplaceAllStringFunc(s, func(m string) string {
			name := placeholder.FindStringSubmatch(m)[1]
			v, ok := vars[name]
			if !ok || v == "" {
				missing = append(missing, name)
				return ""
			}
			return Escape(t.ParseMode, v)
		})
	}
	c := herald.Content{Text: fill(t.Text), ParseMode: t.ParseMode, PhotoURL: t.PhotoURL, PhotoFileID: t.PhotoFileID, Caption: fill(t.Caption)}
	return c, missing
}

// markdownV2Special are the characters MarkdownV2 gives a meaning; Telegram
// accepts any character 1–126 escaped with a backslash anywhere (inside
// code and links too), so escaping them all is safe in every position.
const markdownV2Special = "\\_*[]()~`>#+-=|{}.!"

// Escape makes value literal text in a message of parse mode mode.
func Escape(mode, value string) string {
	switch mode {
	case render.ParseModeMarkdownV2:
		var b strings.Builder
		b.Grow(len(value) + 8)
		for _, r := range value {
			if strings.ContainsRune(markdownV2Special, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		return b.String()
	case render.ParseModeHTML:
		return html.EscapeString(value)
	}
	return value
}
