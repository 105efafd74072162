package facade_test

import (
	"net/http"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// TestUnpinChatMessageIsGoverned: unpinChatMessage is a Herald action
// (unpin_message) through the pipeline, delivered by the Bot API connector;
// the fake Telegram's record is the witness. Telegram's own refusal passes
// through.
func TestUnpinChatMessageIsGoverned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeService, "")
		e.contact("8008", herald.PurposeService)
		r := e.bot(tok, "sendMessage", map[string]any{"chat_id": 8008, "text": "Opening hours changed"})
		if r.status != http.StatusOK {
			t.Fatalf("send: %d %s", r.status, r.raw)
		}
		id := r.num("result", "message_id")
		if r = e.bot(tok, "pinChatMessage", map[string]any{"chat_id": 8008, "message_id": id}); r.status != 200 || r.body["result"] != true {
			t.Fatalf("pin: %d %s", r.status, r.raw)
		}
		if r = e.bot(tok, "unpinChatMessage", map[string]any{"chat_id": 8008, "message_id": id}); r.status != 200 || r.body["result"] != true {
			t.Fatalf("unpin: %d %s", r.status, r.raw)
		}
		sent := e.fake.MessagesTo("8008")
		if len(sent) != 3 || sent[2].Method != "unpinChatMessage" || float64(sent[2].MessageID) != id {
			t.Fatalf("Telegram recorded %+v", sent)
		}
		// Telegram's refusal, verbatim.
		r = e.bot(tok, "unpinChatMessage", map[string]any{"chat_id": 8008, "message_id": id + 100})
		if r.status != 400 || r.str("description") != "Bad Request: message to unpin not found" {
			t.Fatalf("unpin of an unknown message: %d %s", r.status, r.raw)
		}
		// Herald names the message it unpins.
		r = e.bot(tok, "unpinChatMessage", map[string]any{"chat_id": 8008})
		if r.status != 400 || r.str("description") != "Bad Request: message identifier is not specified" {
			t.Fatalf("unpin without message_id: %d %s", r.status, r.raw)
		}
		if k := e.ledgerKinds(); k["action.received"] != 4 || k["action.delivered"] != 3 || k["action.failed"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
	})
}

// TestEditMessageCaptionIsGoverned: editMessageCaption is an edit_caption
// action; the bot gets Telegram's Message, the fake's record is the witness,
// and Telegram's refusal (a message without a caption) passes through.
func TestEditMessageCaptionIsGoverned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		e.contact("8009", herald.PurposeTransactional)
		r := e.bot(tok, "sendPhoto", map[string]any{"chat_id": 8009, "photo": "https://cdn.example/p.jpg", "caption": "Your parcel"})
		if r.status != http.StatusOK {
			t.Fatalf("sendPhoto: %d %s", r.status, r.raw)
		}
		id := r.num("result", "message_id")
		r = e.bot(tok, "editMessageCaption", map[string]any{"chat_id": 8009, "message_id": id, "caption": "Your parcel has left"})
		if r.status != 200 || r.str("result", "caption") != "Your parcel has left" || r.num("result", "message_id") != id {
			t.Fatalf("editMessageCaption: %d %s", r.status, r.raw)
		}
		sent := e.fake.MessagesTo("8009")
		if len(sent) != 2 || sent[1].Method != "editMessageCaption" || sent[1].Text != "Your parcel has left" || float64(sent[1].MessageID) != id {
			t.Fatalf("Telegram recorded %+v", sent)
		}
		text := e.bot(tok, "sendMessage", map[string]any{"chat_id": 8009, "text": "Plain text"})
		r = e.bot(tok, "editMessageCaption", map[string]any{"chat_id": 8009, "message_id": text.num("result", "message_id"), "caption": "x"})
		if r.status != 400 || r.str("description") != "Bad Request: there is no caption in the message to edit" {
			t.Fatalf("caption of a text message: %d %s", r.status, r.raw)
		}
		before := e.snapshot()
		r = e.bot(tok, "editMessageCaption", map[string]any{"chat_id": 8009, "message_id": id, "caption": "  "})
		if r.status != 400 || e.snapshot() != before {
			t.Fatalf("empty caption: %d %s (changed: %v)", r.status, r.raw, e.snapshot() != before)
		}
		if k := e.ledgerKinds(); k["action.delivered"] != 3 || k["action.failed"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
	})
}
