package botapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/telegramtest"
)

// BenchmarkSend measures Connector.Send against the fake over loopback HTTP
// with flood control off: the connector's own cost plus one round trip.
func BenchmarkSend(b *testing.B) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}, NoLimits: true})
	defer fake.Close()
	c := newConnector(b, fake.URL(), nil)
	d := msg("1", "benchmark message with a realistic length of about sixty chars")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Send(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendParallel sends from GOMAXPROCS goroutines to distinct chats.
func BenchmarkSendParallel(b *testing.B) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}, NoLimits: true})
	defer fake.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c, err := botapi.New(botapi.Config{BaseURL: fake.URL(), HTTPClient: &http.Client{Transport: tr}, Tokens: &tokens{token: token}})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := msg(fmt.Sprint(n.Add(1)), "parallel")
			if _, err := c.Send(context.Background(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
