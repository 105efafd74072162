package mtproto

import (
	"errors"
	"testing"

	"github.com/gotd/td/tg"

	"github.com/heraldhq/herald/connectors"
)

func TestParsePeer(t *testing.T) {
	good := map[string]tg.InputPeerClass{
		"user:42:-7":       &tg.InputPeerUser{UserID: 42, AccessHash: -7},
		"channel:1001:123": &tg.InputPeerChannel{ChannelID: 1001, AccessHash: 123},
		"chat:55":          &tg.InputPeerChat{ChatID: 55},
		"-55":              &tg.InputPeerChat{ChatID: 55},
		"self":             &tg.InputPeerSelf{},
	}
	for in, want := range good {
		got, err := parsePeer(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got.String() != want.String() {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"123", "-1001234567890", "user:42", "user:x:1", "user:42:x", "channel:0:1", "chat:-1", "bogus"} {
		if _, err := parsePeer(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestUsername(t *testing.T) {
	if n, ok := username("@Herald_News"); !ok || n != "herald_news" {
		t.Fatalf("%q %v", n, ok)
	}
	if _, ok := username("@"); ok {
		t.Fatal("empty username accepted")
	}
}

func TestValidate(t *testing.T) {
	base := connectors.Delivery{ActionID: "a", ChatID: "user:1:2"}
	cases := map[string]connectors.Delivery{
		"invalid_delivery": {ActionID: "a", Kind: connectors.KindSendMessage, Text: "x"},
		"message_empty":    {ActionID: "a", Kind: connectors.KindSendMessage, ChatID: "user:1:2"},
		"not_a_channel":    {ActionID: "a", Kind: connectors.KindPostToChannel, ChatID: "user:1:2", Text: "x"},
		"unsupported_kind": {ActionID: "a", Kind: "poll", ChatID: "user:1:2"},
	}
	for code, d := range cases {
		var p *connectors.PermanentError
		if err := validate(d); !errors.As(err, &p) || p.Code != code {
			t.Errorf("%s: %v", code, err)
		}
	}
	base.Kind = connectors.KindEditMessage
	base.Text = "x"
	if err := validate(base); err == nil {
		t.Error("edit without message id accepted")
	}
}

func TestRandomIDIsStablePerAction(t *testing.T) {
	if RandomID("act-1") != RandomID("act-1") {
		t.Fatal("not stable")
	}
	if RandomID("act-1") == RandomID("act-2") {
		t.Fatal("collision")
	}
	if RandomID("") == 0 {
		t.Fatal("zero")
	}
}

func TestSentMessageID(t *testing.T) {
	u := &tg.Updates{Updates: []tg.UpdateClass{
		&tg.UpdateNewMessage{Message: &tg.Message{ID: 9}},
		&tg.UpdateMessageID{ID: 7, RandomID: 99},
		&tg.UpdateMessageID{ID: 8, RandomID: 42},
	}}
	if got := sentMessageID(u, 42); got != 8 {
		t.Fatalf("by random_id: %d", got)
	}
	if got := sentMessageID(u, 1); got != 9 {
		t.Fatalf("fallback: %d", got)
	}
	if got := sentMessageID(&tg.UpdateShortSentMessage{ID: 5}, 1); got != 5 {
		t.Fatalf("short: %d", got)
	}
	if got := sentMessageID(&tg.UpdatesTooLong{}, 1); got != 0 {
		t.Fatalf("none: %d", got)
	}
}

func TestFormatText(t *testing.T) {
	text, ents, err := formatText("<b>hi</b> <i>there</i>", "HTML")
	if err != nil || text != "hi there" || len(ents) != 2 {
		t.Fatalf("%q %v %v", text, ents, err)
	}
	if _, _, err := formatText("*hi*", "MarkdownV2"); err == nil {
		t.Fatal("MarkdownV2 accepted")
	}
}
