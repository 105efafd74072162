package render

import (
	"fmt"
	"strings"
)

// mdReserved are the characters MarkdownV2 reserves: outside an entity they
// must be escaped with a backslash, or Telegram rejects the message with
// "can't parse entities".
const mdReserved = "_*[]()~`>#+-=|{}.!"

// parseMarkdownV2 checks s against Telegram's MarkdownV2 rules and returns
// the visible text and the URLs of inline links.
func parseMarkdownV2(s string) (string, []string, error) {
	var (
		out   strings.Builder
		links []string
		stack []string // open entity markers
	)
	rs := []rune(s)
	errAt := func(i int, format string, args ...any) error {
		return fmt.Errorf("MarkdownV2: "+format+" (at character %d)", append(args, i+1)...)
	}
	toggle := func(marker string) {
		if n := len(stack); n > 0 && stack[n-1] == marker {
			stack = stack[:n-1]
			return
		}
		stack = append(stack, marker)
	}
	lineStart := true
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		wasLineStart := lineStart
		lineStart = c == '\n'
		switch {
		case c == '\\':
			if i+1 >= len(rs) {
				return "", nil, errAt(i, "a trailing backslash escapes nothing")
			}
			i++
			out.WriteRune(rs[i])
		case c == '`':
			fence := i+2 < len(rs) && rs[i+1] == '`' && rs[i+2] == '`'
			end, step := "`", 1
			if fence {
				end, step = "```", 3
			}
			j := i + step
			for ; j < len(rs); j++ {
				if rs[j] == '\\' {
					j++
					continue
				}
				if strings.HasPrefix(string(rs[j:min(j+len(end), len(rs))]), end) {
					break
				}
			}
			if j >= len(rs) {
				return "", nil, errAt(i, "code entity is not closed with %s", end)
			}
			out.WriteString(unescapeCode(string(rs[i+step : j])))
			i = j + step - 1
		case c == '*', c == '~':
			toggle(string(c))
		case c == '_':
			if i+1 < len(rs) && rs[i+1] == '_' {
				toggle("__")
				i++
			} else {
				toggle("_")
			}
		case c == '|':
			if i+1 >= len(rs) || rs[i+1] != '|' {
				return "", nil, errAt(i, "character '|' is reserved and must be escaped with a backslash")
			}
			toggle("||")
			i++
		case c == '!' && i+1 < len(rs) && rs[i+1] == '[':
			stack = append(stack, "[")
			i++
		case c == '[':
			stack = append(stack, "[")
		case c == ']':
			if n := len(stack); n == 0 || stack[n-1] != "[" {
				return "", nil, errAt(i, "character ']' is reserved and must be escaped with a backslash")
			}
			stack = stack[:len(stack)-1]
			if i+1 >= len(rs) || rs[i+1] != '(' {
				return "", nil, errAt(i, "a link's text must be followed by (URL)")
			}
			j := i + 2
			var u strings.Builder
			for ; j < len(rs) && rs[j] != ')'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) {
					j++
				}
				u.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return "", nil, errAt(i, "link URL is not closed with ')'")
			}
			if u.Len() == 0 {
				return "", nil, errAt(i, "link URL is empty")
			}
			links = append(links, u.String())
			i = j
		case c == '>' && wasLineStart:
			// blockquote line
		case strings.ContainsRune(mdReserved, c):
			return "", nil, errAt(i, "character '%c' is reserved and must be escaped with a backslash", c)
		default:
			out.WriteRune(c)
		}
	}
	if len(stack) > 0 {
		return "", nil, fmt.Errorf("MarkdownV2: entity %q is opened but never closed", stack[len(stack)-1])
	}
	return out.String(), links, nil
}

func unescapeCode(s string) string {
	return strings.NewReplacer("\\`", "`", "\\\\", "\\").Replace(s)
}
