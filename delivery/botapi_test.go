package delivery_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

type fixedToken string

func (t fixedToken) BotToken(context.Context, connectors.Account) (string, error) {
	return string(t), nil
}

// TestBotAPIDeliversEveryKindThroughTheWorker drives every action kind
// through the worker and the real Bot API connector (rate limited) to the
// limit-enforcing fake Telegram, and checks what Telegram received.
func TestBotAPIDeliversEveryKindThroughTheWorker(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		const token = "31337:delivery-test-token-aaaaaaaaaaaaaaaaaa"
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
		defer fake.Close()
		f := newFixture(t, b, policies.OutcomeAllow)
		ctx := context.Background()
		bot, err := botapi.New(botapi.Config{BaseURL: fake.URL(), Tokens: fixedToken(token)})
		if err != nil {
			t.Fatal(err)
		}
		w := delivery.New(f.s, map[string]connectors.Connector{"botapi": ratelimit.Wrap(bot, ratelimit.New(ratelimit.Config{}))},
			decider{policies.OutcomeAllow}, delivery.Config{ID: "w-bot"}, nil, nil)
		acc, err := f.s.CreateAccount(ctx, herald.Account{Org: f.org.ID, Name: "real bot", Kind: herald.AccountBot, Connector: "botapi", SecretRef: "x"})
		if err != nil {
			t.Fatal(err)
		}
		deliver := func(kind, target string, c herald.Content) herald.Action {
			t.Helper()
			a := herald.Action{Org: f.org.ID, Account: acc.ID, Kind: kind, Purpose: "service", Target: target, Content: c,
				SendAt: f.now, SubmittedBy: "op"}
			sa := f.now
			err := f.s.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.InsertAction(ctx, &a, store.Transition{To: herald.StatusDecided, Actor: "policy"},
					store.Transition{To: herald.StatusScheduled, Actor: "system", SendAt: &sa}); err != nil {
					return err
				}
				return tx.Enqueue(ctx, a, sa)
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				if _, err := w.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				if got := f.status(t, a.ID); got.Status == herald.StatusDelivered {
					return got
				} else if got.Status != herald.StatusScheduled {
					t.Fatalf("%s ended %s (%s)", kind, got.Status, got.ErrorMessage)
				}
				f.advance(2 * time.Second)
			}
			t.Fatalf("%s not delivered", kind)
			return a
		}
		first := deliver(herald.KindSendMessage, "-100200300", herald.Content{Text: "*hello*", ParseMode: "MarkdownV2"})
		var r connectors.Receipt
		if err := json.Unmarshal(first.Receipt, &r); err != nil || r.MessageID == 0 {
			t.Fatalf("receipt = %s", first.Receipt)
		}
		deliver(herald.KindSendPhoto, "-100200300", herald.Content{PhotoURL: "https://example.com/a.png", Caption: "pic"})
		deliver(herald.KindPostToChannel, "@heraldnews", herald.Content{Text: "channel post"})
		deliver(herald.KindEditMessage, "-100200300", herald.Content{Text: "edited", MessageID: r.MessageID})
		deliver(herald.KindPinMessage, "-100200300", herald.Content{MessageID: r.MessageID})
		deliver(herald.KindDeleteMessage, "-100200300", herald.Content{MessageID: r.MessageID})
		var methods []string
		for _, m := range fake.Messages() {
			methods = append(methods, m.Method)
		}
		want := "sendMessage,sendPhoto,sendMessage,editMessageText,pinChatMessage,deleteMessage"
		if strings.Join(methods, ",") != want {
			t.Fatalf("Telegram received %v, want %s", methods, want)
		}
		if fake.Stats().TooManyRequests != 0 {
			t.Fatal("the limiter let a 429 happen")
		}
	})
}
