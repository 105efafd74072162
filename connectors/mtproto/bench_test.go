package mtproto

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSend measures one send_message through the connector against the
// in-process MTProto server: encryption, loopback transport, the server's
// handler, decoding the answer and the classification path. The account's
// client is started before the timer.
func BenchmarkSend(b *testing.B) {
	f := startFake(b)
	acct, store := userAccount(b, f, "u-bench")
	c := newTestConnector(b, f.config(&testCreds{}, store))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := c.Send(ctx, msg(acct, "bench-warm", userPeer(5000), "warm")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Send(ctx, msg(acct, "bench-"+strconv.Itoa(i), userPeer(5000), "hello")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendParallel is BenchmarkSend from several goroutines on one
// account: one client, one connection, requests multiplexed by MTProto.
func BenchmarkSendParallel(b *testing.B) {
	f := startFake(b)
	acct, store := userAccount(b, f, "u-bench-par")
	c := newTestConnector(b, f.config(&testCreds{}, store))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := c.Send(ctx, msg(acct, "bench-par-warm", userPeer(5001), "warm")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := c.Send(ctx, msg(acct, "bench-par-"+strconv.Itoa(i), userPeer(5001), "hello")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
