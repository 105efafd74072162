package console

import (
	"encoding/json"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// fieldProblems decodes a problem's field errors for display.
func fieldProblems(p *Problem) []fieldProblem {
	var out []fieldProblem
	for _, raw := range p.Errors {
		var f fieldProblem
		if err := json.Unmarshal(raw, &f); err == nil && (f.Field != "" || f.Message != "") {
			out = append(out, f)
		}
	}
	return out
}

// fragment writes one named template of page without the layout: the
// answer to an htmx request, swapped into the page.
func (c *Console) fragment(r *Request, status int, page, name string, data any) {
	t := c.pages[page]
	securityHeaders(r.W.Header())
	r.W.Header().Set("Cache-Control", "no-store")
	var buf strings.Builder
	if t == nil {
		http.Error(r.W, "no such page", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, name, View{Request: r, Data: data}); err != nil {
		c.cfg.Log.Error("console: render failed", "page", page, "err", err)
		http.Error(r.W, "render failed", http.StatusInternalServerError)
		return
	}
	r.W.Header().Set("Content-Type", "text/html; charset=utf-8")
	r.W.WriteHeader(status)
	_, _ = r.W.Write([]byte(buf.String()))
}

// telegramHTML shows text as a Telegram client would: the entities of its
// parse mode as HTML elements, everything else as escaped text. The API's
// dry run has already checked the markup, so this only draws it; whatever
// it does not recognise is shown as text, never as markup.
func telegramHTML(mode, text string) template.HTML {
	switch mode {
	case "MarkdownV2":
		return template.HTML(markdownV2HTML([]rune(text)))
	case "HTML":
		return template.HTML(htmlModeHTML(text))
	}
	return template.HTML(template.HTMLEscapeString(text))
}

// safeHref keeps only links a recipient could open (http, https, tg).
func safeHref(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https" && p.Scheme != "tg") {
		return ""
	}
	return p.String()
}

func link(href, inner string) string {
	if h := safeHref(href); h != "" {
		return `<a href="` + template.HTMLEscapeString(h) + `" rel="noopener noreferrer nofollow" target="_blank">` + inner + `</a>`
	}
	return inner
}

// markdownV2HTML draws Telegram MarkdownV2: *bold*, _italic_, __underline__,
// ~strike~, ||spoiler||, `code`, ```pre```, [text](url), \-escapes.
func markdownV2HTML(rs []rune) string {
	var out strings.Builder
	open := map[string]bool{}
	tags := map[string][2]string{
		"*": {"<strong>", "</strong>"}, "_": {"<em>", "</em>"}, "__": {"<u>", "</u>"},
		"~": {"<s>", "</s>"}, "||": {`<span class="tg-spoiler">`, "</span>"},
	}
	var order []string
	toggle := func(m string) {
		if open[m] {
			out.WriteString(tags[m][1])
			open[m] = false
			return
		}
		out.WriteString(tags[m][0])
		open[m] = true
		order = append(order, m)
	}
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\\' && i+1 < len(rs):
			i++
			out.WriteString(template.HTMLEscapeString(string(rs[i])))
		case c == '`':
			fence := i+2 < len(rs) && rs[i+1] == '`' && rs[i+2] == '`'
			end := "`"
			if fence {
				end = "```"
			}
			j := i + len(end)
			k := strings.Index(string(rs[j:]), end)
			if k < 0 {
				out.WriteString(template.HTMLEscapeString(string(rs[i:])))
				i = len(rs)
				continue
			}
			body := []rune(string(rs[j:])[:k])
			code := unescapeMD(string(body))
			if fence {
				// the first line of a fence may name a language
				if nl := strings.IndexByte(code, '\n'); nl >= 0 && !strings.ContainsAny(code[:nl], " \t") {
					code = code[nl+1:]
				}
				out.WriteString("<pre><code>" + template.HTMLEscapeString(code) + "</code></pre>")
			} else {
				out.WriteString("<code>" + template.HTMLEscapeString(code) + "</code>")
			}
			i = j + len(body) + len(end) - 1
		case c == '[':
			closeAt := findUnescaped(rs, i+1, ']')
			if closeAt < 0 || closeAt+1 >= len(rs) || rs[closeAt+1] != '(' {
				out.WriteString("[")
				continue
			}
			urlEnd := findUnescaped(rs, closeAt+2, ')')
			if urlEnd < 0 {
				out.WriteString("[")
				continue
			}
			out.WriteString(link(unescapeMD(string(rs[closeAt+2:urlEnd])), markdownV2HTML(rs[i+1:closeAt])))
			i = urlEnd
		case c == '_' && i+1 < len(rs) && rs[i+1] == '_':
			toggle("__")
			i++
		case c == '|' && i+1 < len(rs) && rs[i+1] == '|':
			toggle("||")
			i++
		case c == '*' || c == '_' || c == '~':
			toggle(string(c))
		case c == '>' && (i == 0 || rs[i-1] == '\n'):
			// a quote line: shown as text without its marker
		case c == '\n':
			out.WriteString("<br>")
		default:
			out.WriteString(template.HTMLEscapeString(string(c)))
		}
	}
	// close what the text left open, innermost first, so the preview
	// cannot leak markup into the page
	for i := len(order) - 1; i >= 0; i-- {
		if m := order[i]; open[m] {
			out.WriteString(tags[m][1])
			open[m] = false
		}
	}
	return out.String()
}

func findUnescaped(rs []rune, from int, r rune) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == '\\' {
			i++
			continue
		}
		if rs[i] == r {
			return i
		}
	}
	return -1
}

func unescapeMD(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		if rs[i] == '\\' && i+1 < len(rs) {
			i++
		}
		b.WriteRune(rs[i])
	}
	return b.String()
}

var (
	htmlTag    = regexp.MustCompile(`<[^<>]*>`)
	simpleTag  = regexp.MustCompile(`^<(/?)(b|strong|i|em|u|ins|s|strike|del|code|pre|blockquote|tg-spoiler)>$`)
	anchorOpen = regexp.MustCompile(`^<a\s+href\s*=\s*(?:"([^"]*)"|'([^']*)')\s*>$`)
	spoilerTag = regexp.MustCompile(`^<span\s+class\s*=\s*"tg-spoiler"\s*>$`)
)

// htmlModeHTML draws Telegram's HTML parse mode: its few tags are kept in a
// canonical form, any other tag is shown as text, entities are decoded and
// re-escaped. Unbalanced tags are closed at the end.
func htmlModeHTML(s string) string {
	var out strings.Builder
	var stack []string
	text := func(t string) {
		out.WriteString(strings.ReplaceAll(template.HTMLEscapeString(html.UnescapeString(t)), "\n", "<br>"))
	}
	pos := 0
	for _, loc := range htmlTag.FindAllStringIndex(s, -1) {
		text(s[pos:loc[0]])
		pos = loc[1]
		tag := s[loc[0]:loc[1]]
		switch m := simpleTag.FindStringSubmatch(tag); {
		case m != nil && m[1] == "":
			name := m[2]
			if name == "tg-spoiler" {
				out.WriteString(`<span class="tg-spoiler">`)
				stack = append(stack, "</span>")
			} else {
				out.WriteString("<" + name + ">")
				stack = append(stack, "</"+name+">")
			}
		case m != nil && len(stack) > 0:
			out.WriteString(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
		case spoilerTag.MatchString(tag):
			out.WriteString(`<span class="tg-spoiler">`)
			stack = append(stack, "</span>")
		case tag == "</span>" || tag == "</a>":
			if len(stack) > 0 {
				out.WriteString(stack[len(stack)-1])
				stack = stack[:len(stack)-1]
			}
		default:
			if a := anchorOpen.FindStringSubmatch(tag); a != nil {
				href := html.UnescapeString(a[1] + a[2])
				if h := safeHref(href); h != "" {
					out.WriteString(`<a href="` + template.HTMLEscapeString(h) + `" rel="noopener noreferrer nofollow" target="_blank">`)
					stack = append(stack, "</a>")
					continue
				}
				stack = append(stack, "")
				continue
			}
			text(tag)
		}
	}
	text(s[pos:])
	for i := len(stack) - 1; i >= 0; i-- {
		out.WriteString(stack[i])
	}
	return out.String()
}
