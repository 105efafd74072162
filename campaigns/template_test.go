package campaigns

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/render"
)

func TestFillEscapesPerParseMode(t *testing.T) {
	for _, tc := range []struct {
		mode, text, value, want string
	}{
		{render.ParseModeMarkdownV2, "Hi *{{first_name}}*!", "A_b*[c](d).", "Hi *A\\_b\\*\\[c\\]\\(d\\)\\.*!"},
		{render.ParseModeHTML, "Hi <b>{{first_name}}</b>", "<i>&\"", "Hi <b>&lt;i&gt;&amp;&#34;</b>"},
		{"", "Hi {{ first_name }}", "*<b>", "Hi *<b>"},
	} {
		c, missing := Template{Text: tc.text, ParseMode: tc.mode}.Fill(map[string]string{"first_name": tc.value})
		if len(missing) > 0 || c.Text != tc.want {
			t.Errorf("%q in %s: got %q (missing %v), want %q", tc.value, tc.mode, c.Text, missing, tc.want)
		}
	}
}

func TestMissingVariableIsReported(t *testing.T) {
	tpl := Template{Text: "Hi {{first_name}} from {{city}}", ParseMode: render.ParseModeHTML}
	_, missing := tpl.Fill(map[string]string{"city": "Oslo"})
	if len(missing) != 1 || missing[0] != "first_name" {
		t.Fatalf("missing = %v, want [first_name]", missing)
	}
	_, missing = tpl.Fill(map[string]string{"city": "Oslo", "first_name": ""})
	if len(missing) != 1 {
		t.Fatalf("an empty value must count as missing, got %v", missing)
	}
}

func TestTemplateValidate(t *testing.T) {
	if fe := (Template{Text: "Hi {{First Name}}"}).Validate(herald.KindSendMessage); len(fe) == 0 {
		t.Error("a malformed variable name must be refused")
	}
	if fe := (Template{Text: "Hi *{{first_name}}", ParseMode: render.ParseModeMarkdownV2}).Validate(herald.KindSendMessage); len(fe) == 0 {
		t.Error("an unclosed MarkdownV2 entity must be refused at creation")
	}
	if fe := (Template{PhotoURL: "https://example.com/a.jpg", Caption: "<b>{{first_name}}</b>", ParseMode: render.ParseModeHTML}).Validate(herald.KindSendPhoto); len(fe) != 0 {
		t.Errorf("a valid photo template was refused: %v", fe)
	}
}

// FuzzFillIsSafe: whatever a contact's attribute holds, the filled message
// is valid for its parse mode (it renders), and the recipient sees the
// value literally (it appears in the plain text unchanged), so a value can
// never inject formatting, links or break the message.
func FuzzFillIsSafe(f *testing.F) {
	for _, s := range []string{"Ada", "*bold*", "<b>x</b>", "a_b", "[x](http://e.com)", "&amp;", "\\", "`code`", "a>b", "ü→😀", "'\""} {
		f.Add(s)
	}
	templates := []Template{
		{Text: "Hi *{{first_name}}*, _see_ [site](https://example.com) `{{first_name}}`", ParseMode: render.ParseModeMarkdownV2},
		{Text: "Hi <b>{{first_name}}</b>, <a href=\"https://example.com\">site</a> <code>{{first_name}}</code>", ParseMode: render.ParseModeHTML},
		{Text: "Hi {{first_name}}"},
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !ValidAttributeValue(v) || strings.TrimSpace(v) == "" || len(v) > 200 {
			return // not storable as an attribute
		}
		for _, tpl := range templates {
			c, missing := tpl.Fill(map[string]string{"first_name": v})
			if len(missing) > 0 {
				t.Fatalf("missing %v", missing)
			}
			r, err := render.Render(herald.KindSendMessage, c)
			if err != nil {
				t.Fatalf("%s template with %q does not render: %v (text %q)", tpl.ParseMode, v, err, c.Text)
			}
			if !strings.Contains(r.Plain, v) && !strings.Contains(r.Plain, strings.TrimSpace(v)) {
				t.Fatalf("%s template with %q: the recipient sees %q", tpl.ParseMode, v, r.Plain)
			}
		}
	})
}
