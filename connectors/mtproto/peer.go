package mtproto

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gotd/td/tg"
)

// Peer forms accepted in Delivery.ChatID. MTProto addresses users and
// channels by id *and* access hash (a per-account capability), so a bare
// numeric id is not enough, except for basic groups:
//
//	@username                 resolved with contacts.resolveUsername (cached)
//	user:<id>:<access_hash>   a user (or bot) this account has seen
//	channel:<id>:<access_hash> a channel or supergroup
//	chat:<id>                 a basic group (no access hash exists)
//	-<id>                     a basic group in Bot API form (not -100…)
//	self                      the account's own Saved Messages
const (
	prefixUser    = "user:"
	prefixChannel = "channel:"
	prefixChat    = "chat:"
	peerSelf      = "self"
	// botAPIChannelPrefix marks a Bot API channel id (-100<channel id>);
	// without an access hash MTProto cannot address it.
	botAPIChannelPrefix = "-100"
)

// peerError is why a ChatID cannot be turned into a peer; it becomes a
// PermanentError with code invalid_peer.
type peerError struct{ chatID, why string }

func (e *peerError) Error() string { return fmt.Sprintf("chat %q: %s", e.chatID, e.why) }

// username returns the username of an "@name" chat id.
func username(chatID string) (string, bool) {
	if name, ok := strings.CutPrefix(chatID, "@"); ok && name != "" {
		return strings.ToLower(name), true
	}
	return "", false
}

// parsePeer turns every form but @username into an input peer.
func parsePeer(chatID string) (tg.InputPeerClass, error) {
	bad := func(why string) error { return &peerError{chatID: chatID, why: why} }
	switch {
	case chatID == peerSelf:
		return &tg.InputPeerSelf{}, nil
	case strings.HasPrefix(chatID, prefixUser):
		id, hash, err := idHash(strings.TrimPrefix(chatID, prefixUser))
		if err != nil {
			return nil, bad(err.Error())
		}
		return &tg.InputPeerUser{UserID: id, AccessHash: hash}, nil
	case strings.HasPrefix(chatID, prefixChannel):
		id, hash, err := idHash(strings.TrimPrefix(chatID, prefixChannel))
		if err != nil {
			return nil, bad(err.Error())
		}
		return &tg.InputPeerChannel{ChannelID: id, AccessHash: hash}, nil
	case strings.HasPrefix(chatID, prefixChat):
		id, err := positive(strings.TrimPrefix(chatID, prefixChat))
		if err != nil {
			return nil, bad(err.Error())
		}
		return &tg.InputPeerChat{ChatID: id}, nil
	case strings.HasPrefix(chatID, botAPIChannelPrefix):
		return nil, bad("a channel needs its access hash: use channel:<id>:<access_hash> or @username")
	case strings.HasPrefix(chatID, "-"):
		id, err := positive(strings.TrimPrefix(chatID, "-"))
		if err != nil {
			return nil, bad(err.Error())
		}
		return &tg.InputPeerChat{ChatID: id}, nil
	}
	if _, err := strconv.ParseInt(chatID, 10, 64); err == nil {
		return nil, bad("a user needs an access hash over MTProto: use user:<id>:<access_hash> or @username")
	}
	return nil, bad("unknown peer form")
}

func idHash(s string) (int64, int64, error) {
	idText, hashText, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("want <id>:<access_hash>")
	}
	id, err := positive(idText)
	if err != nil {
		return 0, 0, err
	}
	hash, err := strconv.ParseInt(hashText, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("access hash is not a 64-bit integer")
	}
	return id, hash, nil
}

func positive(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("id %q is not a positive integer", s)
	}
	return n, nil
}

// isChannelish reports whether a chat id addresses a group or channel, the
// only targets post_to_channel accepts.
func isChannelish(chatID string) bool {
	return strings.HasPrefix(chatID, prefixChannel) || strings.HasPrefix(chatID, prefixChat) ||
		strings.HasPrefix(chatID, "-") || strings.HasPrefix(chatID, "@")
}

// inputPeerOf finds the access hash of a resolved peer among the users and
// chats Telegram sent with it.
func inputPeerOf(p tg.PeerClass, users []tg.UserClass, chats []tg.ChatClass) (tg.InputPeerClass, bool) {
	switch p := p.(type) {
	case *tg.PeerUser:
		for _, u := range users {
			if u, ok := u.(*tg.User); ok && u.ID == p.UserID {
				return &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}, true
			}
		}
	case *tg.PeerChannel:
		for _, c := range chats {
			if c, ok := c.(*tg.Channel); ok && c.ID == p.ChannelID {
				return &tg.InputPeerChannel{ChannelID: c.ID, AccessHash: c.AccessHash}, true
			}
		}
	case *tg.PeerChat:
		return &tg.InputPeerChat{ChatID: p.ChatID}, true
	}
	return nil, false
}
