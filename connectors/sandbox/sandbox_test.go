package sandbox

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/connectors"
)

func TestSandboxRecordsAndJournals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	c := &Connector{Journal: path}
	ctx := context.Background()
	for i, d := range []connectors.Delivery{
		{ActionID: "a1", Kind: connectors.KindSendMessage, ChatID: "-100", Text: "one"},
		{ActionID: "a2", Kind: connectors.KindSendPhoto, ChatID: "-100", PhotoURL: "https://x/y.png", Caption: "two"},
		{ActionID: "a3", Kind: connectors.KindPinMessage, ChatID: "-100", MessageID: 1},
	} {
		r, err := c.Send(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(i + 1)
		if d.Kind == connectors.KindPinMessage {
			want = 1
		}
		if r.MessageID != want || r.Connector != "sandbox" {
			t.Fatalf("receipt %d = %+v", i, r)
		}
	}
	got, err := ReadJournal(path)
	if err != nil || len(got) != 3 || got[1].Photo != "https://x/y.png" || got[0].Text != "one" {
		t.Fatalf("journal = %+v, %v", got, err)
	}
	if len(c.Messages()) != 3 {
		t.Fatal("memory record incomplete")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Send(cctx, connectors.Delivery{ActionID: "a4"}); connectors.Classify(err) != connectors.ClassRetryable {
		t.Fatalf("cancelled send = %v", err)
	}
}
