package console

import (
	"strings"
	"testing"
)

// The preview is drawn into the console's own page: whatever the text
// holds, only the few Telegram entities become markup, links only with
// http(s)/tg schemes, and nothing stays open.
func TestTelegramHTML(t *testing.T) {
	for _, tc := range []struct {
		mode, text string
		want       []string
		never      []string
	}{
		{"", "<b>x</b> & <script>", []string{"&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;"}, []string{"<b>", "<script"}},
		{"HTML", `<b>bold</b> <i>it</i> <a href="https://e.org/?a=1&amp;b=2">l</a> &lt;tag&gt;`,
			[]string{"<b>bold</b>", "<i>it</i>", `href="https://e.org/?a=1&amp;b=2"`, "&lt;tag&gt;"}, nil},
		{"HTML", `<script>alert(1)</script><img src=x onerror=alert(1)>`, []string{"&lt;script&gt;", "&lt;img"}, []string{"<script", "<img"}},
		{"HTML", `<a href="javascript:alert(1)">x</a>`, []string{"x"}, []string{"javascript", "<a"}},
		{"HTML", `<b>open`, []string{"<b>open</b>"}, nil},
		{"HTML", `<tg-spoiler>s</tg-spoiler><span class="tg-spoiler">t</span>`, []string{`<span class="tg-spoiler">s</span>`, `<span class="tg-spoiler">t</span>`}, nil},
		{"MarkdownV2", `*b* _i_ __u__ ~s~ ||sp|| ` + "`c<`" + ` [l](https://e.org/x\)y) 1\.5 \*`,
			[]string{"<strong>b</strong>", "<em>i</em>", "<u>u</u>", "<s>s</s>", `<span class="tg-spoiler">sp</span>`, "<code>c&lt;</code>",
				`<a href="https://e.org/x)y"`, "1.5 *"}, nil},
		{"MarkdownV2", `[x](javascript:alert\(1\)) *open`, []string{"x", "<strong>open</strong>"}, []string{"javascript", "<a"}},
		{"MarkdownV2", "```go\nfmt.Println(\"<\")\n```", []string{"<pre><code>fmt.Println(&#34;&lt;&#34;)\n</code></pre>"}, []string{"go\n"}},
	} {
		got := string(telegramHTML(tc.mode, tc.text))
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s %q → %q, lacks %q", tc.mode, tc.text, got, w)
			}
		}
		for _, n := range tc.never {
			if strings.Contains(got, n) {
				t.Errorf("%s %q → %q, holds %q", tc.mode, tc.text, got, n)
			}
		}
	}
}
