package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/telegramtest"
)

const token = "555:lease-test"

type staticToken string

func (s staticToken) BotToken(context.Context, connectors.Account) (string, error) {
	return string(s), nil
}

var account = connectors.Account{ID: "acc", Kind: "bot"}

// worker is one delivery worker process: its own Limiter and connector.
func worker(t *testing.T, base string) (*ratelimit.Limiter, connectors.Connector) {
	c, err := botapi.New(botapi.Config{BaseURL: base, HTTPClient: &http.Client{Timeout: 5 * time.Second}, Tokens: staticToken(token)})
	if err != nil {
		t.Fatal(err)
	}
	lim := ratelimit.New(ratelimit.Config{})
	return lim, ratelimit.Wrap(c, lim)
}

func queue(n int) chan connectors.Delivery {
	q := make(chan connectors.Delivery, n)
	for i := range n {
		q <- connectors.Delivery{ActionID: fmt.Sprint(i), Account: account, Kind: connectors.KindSendMessage, ChatID: fmt.Sprint(1000 + i), Text: "x"}
	}
	close(q)
	return q
}

// Two worker processes share one queue. With a lease per account only the
// holder sends, so its buckets are the account's and Telegram sees 30 msg/s.
func TestLeaseKeepsOneSenderPerAccount(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	var lease ratelimit.LocalLease // PostgreSQL lease in production
	q := queue(70)
	var wg sync.WaitGroup
	for range 2 {
		lim, send := worker(t, fake.URL())
		wg.Go(func() {
			ctx := context.Background()
			for {
				h, ok, err := lease.TryAcquire(ctx, account.ID)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				lim.Drain(account) // the previous holder may have spent this second
				for range 10 {
					d, more := <-q
					if !more {
						h.Release(ctx)
						return
					}
					if _, err := send.Send(ctx, d); err != nil {
						t.Error(err)
					}
				}
				h.Release(ctx)
			}
		})
	}
	wg.Wait()
	if n := fake.TooManyRequests(); n != 0 {
		t.Errorf("fake issued %d 429s", n)
	}
	if n := len(fake.Messages()); n != 70 {
		t.Errorf("delivered %d of 70", n)
	}
}

// Without the lease each process's buckets allow 30 msg/s on their own and
// Telegram sees their sum: the reason the lease exists.
func TestWithoutLeaseBucketsMultiply(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	q := queue(120)
	var wg sync.WaitGroup
	for range 2 {
		_, send := worker(t, fake.URL())
		wg.Go(func() {
			for d := range q {
				send.Send(context.Background(), d)
			}
		})
	}
	wg.Wait()
	if fake.TooManyRequests() == 0 {
		t.Error("two unleased workers stayed under the bot limit; the test proves nothing")
	}
}
