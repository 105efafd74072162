package ratelimit

import (
	"strings"

	"github.com/heraldhq/herald/connectors"
)

// AccountScope names the scope of every send of one account: "bot:<id>" for
// bots, "user:<id>" for MTProto user accounts.
func AccountScope(a connectors.Account) string {
	if a.Kind == "user" {
		return "user:" + a.ID
	}
	return "bot:" + a.ID
}

// ChatScope names the scope of one chat: "chat:<id>".
func ChatScope(chatID string) string { return "chat:" + chatID }

// IsGroupChat reports whether a chat id addresses a group, supergroup or
// channel: Telegram gives those negative ids, and only channels and public
// supergroups have @usernames a bot can post to. Private chats with users
// have positive ids.
func IsGroupChat(chatID string) bool {
	return strings.HasPrefix(chatID, "-") || strings.HasPrefix(chatID, "@")
}
