package mtproto

import (
	"fmt"
	"strings"

	"github.com/gotd/td/telegram/message/entity"
	"github.com/gotd/td/telegram/message/html"
	"github.com/gotd/td/tg"
)

// Parse modes. MTProto has no parse_mode: formatting travels as entities,
// which gotd builds from Bot API-style HTML. MarkdownV2 has no parser in
// gotd, and a hand-written one would drift from Telegram's, so it is refused
// (as a permanent bad_markup) rather than sent as literal asterisks.
const (
	parseModeNone = ""
	parseModeHTML = "HTML"
)

// formatText returns the text and entities for parseMode.
func formatText(text, parseMode string) (string, []tg.MessageEntityClass, error) {
	switch parseMode {
	case parseModeNone:
		return text, nil, nil
	case parseModeHTML:
		var b entity.Builder
		if err := html.HTML(strings.NewReader(text), &b, html.Options{}); err != nil {
			return "", nil, fmt.Errorf("parse HTML: %w", err)
		}
		msg, entities := b.Complete()
		return msg, entities, nil
	}
	return "", nil, fmt.Errorf("parse mode %q is not supported over MTProto (use HTML)", parseMode)
}
