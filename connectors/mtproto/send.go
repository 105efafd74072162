package mtproto

import (
	"context"
	"fmt"

	"github.com/gotd/td/fileid"
	"github.com/gotd/td/tg"

	"github.com/heraldhq/herald/connectors"
)

// TL names of the methods Send calls, for scopes and errors.
const (
	methodSendMessage    = "messages.sendMessage"
	methodSendMedia      = "messages.sendMedia"
	methodEditMessage    = "messages.editMessage"
	methodDeleteMessages = "messages.deleteMessages"
	methodDeleteChannel  = "channels.deleteMessages"
	methodPin            = "messages.updatePinnedMessage"
)

// peer resolves d.ChatID. Its errors are classified; nothing was sent.
func (c *Connector) peer(ctx context.Context, a *account, d connectors.Delivery) (tg.InputPeerClass, error) {
	if name, ok := username(d.ChatID); ok {
		p, err := a.names.resolve(ctx, a.api(), name)
		if err != nil {
			// Resolving is read-only: a lost answer changes nothing.
			return nil, classify(d, methodResolveUsername, err, notSent)
		}
		return p, nil
	}
	p, err := parsePeer(d.ChatID)
	if err != nil {
		return nil, invalid(d, "invalid_peer", err.Error())
	}
	return p, nil
}

// do performs the call for d and returns the message id to report and the
// method called.
func (c *Connector) do(ctx context.Context, a *account, d connectors.Delivery, peer tg.InputPeerClass) (int64, string, error) {
	api := a.api()
	switch d.Kind {
	case connectors.KindSendMessage, connectors.KindPostToChannel:
		if d.Kind == connectors.KindPostToChannel && (d.PhotoURL != "" || d.PhotoFileID != "") {
			return c.sendPhoto(ctx, api, d, peer)
		}
		text, entities, err := formatText(d.Text, d.ParseMode)
		if err != nil {
			return 0, methodSendMessage, invalid(d, "bad_markup", err.Error())
		}
		randomID := RandomID(d.ActionID)
		u, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer: peer, Message: text, Entities: entities, RandomID: randomID,
			Silent: d.DisableNotification,
		})
		if err != nil {
			return 0, methodSendMessage, err
		}
		return sentMessageID(u, randomID), methodSendMessage, nil
	case connectors.KindSendPhoto:
		return c.sendPhoto(ctx, api, d, peer)
	case connectors.KindEditMessage:
		text, entities, err := formatText(d.Text, d.ParseMode)
		if err != nil {
			return 0, methodEditMessage, invalid(d, "bad_markup", err.Error())
		}
		_, err = api.MessagesEditMessage(ctx, &tg.MessagesEditMessageRequest{
			Peer: peer, ID: int(d.MessageID), Message: text, Entities: entities,
		})
		return d.MessageID, methodEditMessage, err
	case connectors.KindEditCaption:
		// A media message's caption is its message text in MTProto.
		text, entities, err := formatText(d.Caption, d.ParseMode)
		if err != nil {
			return 0, methodEditMessage, invalid(d, "bad_markup", err.Error())
		}
		_, err = api.MessagesEditMessage(ctx, &tg.MessagesEditMessageRequest{
			Peer: peer, ID: int(d.MessageID), Message: text, Entities: entities,
		})
		return d.MessageID, methodEditMessage, err
	case connectors.KindDeleteMessage:
		if ch, ok := peer.(*tg.InputPeerChannel); ok {
			_, err := api.ChannelsDeleteMessages(ctx, &tg.ChannelsDeleteMessagesRequest{
				Channel: &tg.InputChannel{ChannelID: ch.ChannelID, AccessHash: ch.AccessHash},
				ID:      []int{int(d.MessageID)},
			})
			return d.MessageID, methodDeleteChannel, err
		}
		// Revoke: delete for everyone, which is what the action means.
		_, err := api.MessagesDeleteMessages(ctx, &tg.MessagesDeleteMessagesRequest{
			Revoke: true, ID: []int{int(d.MessageID)},
		})
		return d.MessageID, methodDeleteMessages, err
	case connectors.KindPinMessage:
		_, err := api.MessagesUpdatePinnedMessage(ctx, &tg.MessagesUpdatePinnedMessageRequest{
			Peer: peer, ID: int(d.MessageID), Silent: d.DisableNotification,
		})
		return d.MessageID, methodPin, err
	case connectors.KindUnpinMessage:
		_, err := api.MessagesUpdatePinnedMessage(ctx, &tg.MessagesUpdatePinnedMessageRequest{
			Peer: peer, ID: int(d.MessageID), Unpin: true,
		})
		return d.MessageID, methodPin, err
	}
	return 0, "", invalid(d, "unsupported_kind", "unreachable: validate accepts the kind")
}

// sendPhoto sends a photo by URL (Telegram fetches it) or by a Bot API
// file_id (usable only by the bot that received it).
func (c *Connector) sendPhoto(ctx context.Context, api *tg.Client, d connectors.Delivery, peer tg.InputPeerClass) (int64, string, error) {
	caption := d.Caption
	if caption == "" {
		caption = d.Text
	}
	text, entities, err := formatText(caption, d.ParseMode)
	if err != nil {
		return 0, methodSendMedia, invalid(d, "bad_markup", err.Error())
	}
	var media tg.InputMediaClass = &tg.InputMediaPhotoExternal{URL: d.PhotoURL}
	if d.PhotoFileID != "" {
		media, err = photoByFileID(d.PhotoFileID)
		if err != nil {
			return 0, methodSendMedia, invalid(d, "bad_photo", err.Error())
		}
	}
	randomID := RandomID(d.ActionID)
	u, err := api.MessagesSendMedia(ctx, &tg.MessagesSendMediaRequest{
		Peer: peer, Media: media, Message: text, Entities: entities, RandomID: randomID,
		Silent: d.DisableNotification,
	})
	if err != nil {
		return 0, methodSendMedia, err
	}
	return sentMessageID(u, randomID), methodSendMedia, nil
}

func photoByFileID(s string) (tg.InputMediaClass, error) {
	f, err := fileid.DecodeFileID(s)
	if err != nil {
		return nil, fmt.Errorf("decode file id: %w", err)
	}
	if f.Type != fileid.Photo {
		return nil, fmt.Errorf("file id is a %s, not a photo", f.Type)
	}
	return &tg.InputMediaPhoto{ID: &tg.InputPhoto{ID: f.ID, AccessHash: f.AccessHash, FileReference: f.FileReference}}, nil
}

// invalid is a permanent failure decided before any request.
func invalid(d connectors.Delivery, code, why string) error {
	return &connectors.PermanentError{Code: code, Err: fmt.Errorf("mtproto: action %s (%s): %s", d.ActionID, d.Kind, why)}
}

// validate rejects deliveries that cannot be sent, without a request.
func validate(d connectors.Delivery) error {
	if d.ChatID == "" {
		return invalid(d, "invalid_delivery", "no chat id")
	}
	switch d.Kind {
	case connectors.KindSendMessage:
		if d.Text == "" {
			return invalid(d, "message_empty", "no text")
		}
	case connectors.KindPostToChannel:
		if !isChannelish(d.ChatID) {
			return invalid(d, "not_a_channel", "a channel is addressed as channel:<id>:<hash>, chat:<id>, a negative id or @username")
		}
		if d.Text == "" && d.PhotoURL == "" && d.PhotoFileID == "" {
			return invalid(d, "message_empty", "no text and no photo")
		}
	case connectors.KindSendPhoto:
		if d.PhotoURL == "" && d.PhotoFileID == "" {
			return invalid(d, "invalid_delivery", "no photo URL or file id")
		}
	case connectors.KindEditMessage:
		if d.MessageID <= 0 || d.Text == "" {
			return invalid(d, "invalid_delivery", "edit needs a message id and text")
		}
	case connectors.KindEditCaption:
		if d.MessageID <= 0 || d.Caption == "" {
			return invalid(d, "invalid_delivery", "caption edit needs a message id and a caption")
		}
	case connectors.KindDeleteMessage, connectors.KindPinMessage, connectors.KindUnpinMessage:
		if d.MessageID <= 0 {
			return invalid(d, "invalid_delivery", "no message id")
		}
	default:
		return invalid(d, "unsupported_kind", "kind not supported by the MTProto connector")
	}
	return nil
}
