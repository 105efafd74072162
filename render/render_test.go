package render

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func fieldsOf(err error) map[string]string {
	out := map[string]string{}
	if e, ok := err.(*herald.Error); ok {
		for _, f := range e.Fields {
			out[f.Field] = f.Message
		}
	}
	return out
}

func TestRenderLimits(t *testing.T) {
	tests := []struct {
		name      string
		kind      string
		content   herald.Content
		wantField string // "" = valid
	}{
		{"plain text", herald.KindSendMessage, herald.Content{Text: "hello"}, ""},
		{"exactly 4096", herald.KindSendMessage, herald.Content{Text: strings.Repeat("a", 4096)}, ""},
		{"4097", herald.KindSendMessage, herald.Content{Text: strings.Repeat("a", 4097)}, "text"},
		// An emoji outside the BMP counts two UTF-16 units, as Telegram counts it.
		{"2049 emoji", herald.KindSendMessage, herald.Content{Text: strings.Repeat("😀", 2049)}, "text"},
		{"markup not counted", herald.KindSendMessage, herald.Content{Text: "*" + strings.Repeat("a", 4096) + "*", ParseMode: "MarkdownV2"}, ""},
		{"empty text", herald.KindSendMessage, herald.Content{Text: "  "}, "text"},
		{"caption 1025", herald.KindSendPhoto, herald.Content{PhotoFileID: "AgAD", Caption: strings.Repeat("b", 1025)}, "caption"},
		{"photo needs source", herald.KindSendPhoto, herald.Content{Caption: "x"}, "photo_url"},
		{"photo url scheme", herald.KindSendPhoto, herald.Content{PhotoURL: "ftp://x/y.png"}, "photo_url"},
		{"photo ok", herald.KindSendPhoto, herald.Content{PhotoURL: "https://example.com/a.png", Caption: "hi"}, ""},
		{"edit needs id", herald.KindEditMessage, herald.Content{Text: "x"}, "message_id"},
		{"delete needs id", herald.KindDeleteMessage, herald.Content{}, "message_id"},
		{"pin ok", herald.KindPinMessage, herald.Content{MessageID: 5}, ""},
		{"pin with text", herald.KindPinMessage, herald.Content{MessageID: 5, Text: "x"}, "kind"},
		{"legacy markdown", herald.KindSendMessage, herald.Content{Text: "x", ParseMode: "Markdown"}, "parse_mode"},
		{"unknown kind", "send_sticker", herald.Content{}, "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.kind, tt.content)
			f := fieldsOf(err)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if _, ok := f[tt.wantField]; !ok {
				t.Fatalf("want an error on %s, got %v", tt.wantField, err)
			}
		})
	}
}

func TestMarkdownV2(t *testing.T) {
	ok := map[string]string{
		`*bold* _it_ __u__ ~s~ ||sp||`:     "bold it u s sp",
		`Price: 10\.50\!`:                  "Price: 10.50!",
		"`a*b` and ```go\nx := 1```":       "a*b and go\nx := 1",
		`[site](https://example.com/a\)b)`: "site",
		">quoted line\nnext":               "quoted line\nnext",
		`nested *bold _italic_ bold*`:      "nested bold italic bold",
	}
	for in, want := range ok {
		plain, _, err := parseMarkdownV2(in)
		if err != nil || plain != want {
			t.Errorf("parse(%q) = %q, %v; want %q", in, plain, err, want)
		}
	}
	bad := []string{`Price: 10.50`, `*unclosed`, `a|b`, `[text]`, "`open", `trailing\`, `x > y`, `(x)`}
	for _, in := range bad {
		if _, _, err := parseMarkdownV2(in); err == nil {
			t.Errorf("parse(%q) accepted invalid MarkdownV2", in)
		}
	}
}

func TestHTML(t *testing.T) {
	plain, links, err := parseHTML(`<b>Sale</b> &amp; <a href="https://bit.ly/x">more</a> <span class="tg-spoiler">s</span> 1 &lt; 2`)
	if err != nil || plain != "Sale & more s 1 < 2" || len(links) != 1 || links[0] != "https://bit.ly/x" {
		t.Fatalf("parseHTML = %q %v %v", plain, links, err)
	}
	for _, in := range []string{`<b>x`, `<script>x</script>`, `a < b`, `a > b`, `&nbsp;`, `<b><i>x</b></i>`, `<a>x</a>`, `<span>x</span>`} {
		if _, _, err := parseHTML(in); err == nil {
			t.Errorf("parseHTML(%q) accepted invalid HTML", in)
		}
	}
}

func TestStats(t *testing.T) {
	r, err := Render(herald.KindSendMessage, herald.Content{Text: "BUY NOW!!! at https://bit.ly/abc and www.example.com/page @friend"})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Stats
	if s.Links != 2 || s.Shortened != 1 || s.Exclaims != 3 || s.Mentions != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if len(s.Domains) != 2 || s.Domains[0] != "bit.ly" || s.Domains[1] != "example.com" {
		t.Fatalf("domains = %v", s.Domains)
	}
	if s.CapsRatio <= 0.2 || s.CapsRatio >= 0.5 {
		t.Fatalf("caps ratio = %v", s.CapsRatio)
	}
}
