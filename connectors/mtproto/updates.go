package mtproto

import "github.com/gotd/td/tg"

// sentMessageID finds the id of the message a send created in Telegram's
// answer. Telegram links it to the request by random_id (updateMessageID);
// the new-message updates are a fallback for answers without that link.
// A send acknowledged without an id is still delivered; its id is then 0.
func sentMessageID(u tg.UpdatesClass, randomID int64) int64 {
	var updates []tg.UpdateClass
	switch u := u.(type) {
	case *tg.UpdateShortSentMessage:
		return int64(u.ID)
	case *tg.Updates:
		updates = u.Updates
	case *tg.UpdatesCombined:
		updates = u.Updates
	case *tg.UpdateShort:
		updates = []tg.UpdateClass{u.Update}
	}
	var fallback int64
	for _, up := range updates {
		switch up := up.(type) {
		case *tg.UpdateMessageID:
			if up.RandomID == randomID {
				return int64(up.ID)
			}
		case *tg.UpdateNewMessage:
			if fallback == 0 {
				fallback = int64(up.Message.GetID())
			}
		case *tg.UpdateNewChannelMessage:
			if fallback == 0 {
				fallback = int64(up.Message.GetID())
			}
		}
	}
	return fallback
}
