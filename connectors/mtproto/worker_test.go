package mtproto

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

type allowAll struct{}

func (allowAll) Decide(context.Context, policies.Input) (policies.Decision, error) {
	return policies.Decision{Outcome: policies.OutcomeAllow}, nil
}

// TestDeliversThroughTheWorker runs the MTProto connector under the real
// delivery worker and store, against gotd's in-process MTProto server: an
// action to a user peer goes out and is recorded delivered with Telegram's
// message id, and a PEER_FLOOD freezes the account and holds its queue.
func TestDeliversThroughTheWorker(t *testing.T) {
	f := startFake(t)
	ctx := testCtx(t)
	s := storetest.Open(t, storetest.SQLite)
	org, err := s.CreateOrg(ctx, "acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.CreateAccount(ctx, herald.Account{Org: org.ID, Name: "ann", Kind: herald.AccountUser, Connector: herald.ConnectorMTProto, SecretRef: "x"})
	if err != nil {
		t.Fatal(err)
	}
	mem := newMemStore()
	mem.data[acc.ID] = append([]byte(nil), loggedInSession...)
	c := newTestConnector(t, f.config(&testCreds{}, mem))
	w := delivery.New(s, map[string]connectors.Connector{herald.ConnectorMTProto: c}, allowAll{}, delivery.Config{ID: "w-mt"}, nil, nil)
	sendKind := func(kind, target string, content herald.Content) herald.Action {
		t.Helper()
		a := herald.Action{Org: org.ID, Account: acc.ID, Kind: kind, Purpose: "support", Target: target,
			Content: content, SendAt: s.Now(), SubmittedBy: "op"}
		sa := s.Now()
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.InsertAction(ctx, &a, store.Transition{To: herald.StatusDecided, Actor: "policy"},
				store.Transition{To: herald.StatusScheduled, Actor: "system", SendAt: &sa}); err != nil {
				return err
			}
			return tx.Enqueue(ctx, a, sa)
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAction(ctx, org.ID, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	send := func(target string) herald.Action {
		return sendKind(herald.KindSendMessage, target, herald.Content{Text: "hello over MTProto"})
	}
	// Every kind goes out through the worker.
	f.reset(1200)
	for _, k := range []struct {
		kind, target string
		content      herald.Content
	}{
		{herald.KindSendPhoto, userPeer(1200), herald.Content{PhotoURL: "https://example.org/cat.jpg", Caption: "a cat"}},
		{herald.KindEditMessage, userPeer(1200), herald.Content{Text: "fixed", MessageID: 7}},
		{herald.KindDeleteMessage, userPeer(1200), herald.Content{MessageID: 8}},
		{herald.KindPinMessage, "channel:1201:33", herald.Content{MessageID: 9}},
		{herald.KindPostToChannel, "@herald_news", herald.Content{Text: "news"}},
	} {
		if got := sendKind(k.kind, k.target, k.content); got.Status != herald.StatusDelivered {
			t.Fatalf("%s ended %s (%s)", k.kind, got.Status, got.ErrorMessage)
		}
	}
	f.reset(1300)
	got := send(userPeer(1300))
	var r connectors.Receipt
	_ = json.Unmarshal(got.Receipt, &r)
	if got.Status != herald.StatusDelivered || r.MessageID <= 0 || r.Connector != ConnectorName {
		t.Fatalf("delivered = %+v, receipt %s", got, got.Receipt)
	}
	const flooded = 1301
	f.reset(flooded)
	f.on(flooded, func(int) *tgerr.Error { return tgerr.New(400, "PEER_FLOOD") })
	got = send(userPeer(flooded))
	frozen, _ := s.GetAccount(ctx, org.ID, acc.ID)
	if got.Status != herald.StatusScheduled || frozen.Status != herald.AccountFrozen || frozen.FrozenUntil == nil {
		t.Fatalf("after PEER_FLOOD: action %s, account %+v", got.Status, frozen)
	}
}
