// Package sandbox is the connector that never sends. It records what would
// have been sent (account, chat, rendered content) and returns a synthetic
// receipt. The embedded default uses it, so a fresh Herald can be tried end
// to end without a Telegram account; dry runs never reach any connector.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/heraldhq/herald/connectors"
)

// Message is one recorded delivery.
type Message struct {
	ActionID  string    `json:"action_id"`
	Account   string    `json:"account"`
	Kind      string    `json:"kind"`
	ChatID    string    `json:"chat_id"`
	MessageID int64     `json:"message_id"`
	Text      string    `json:"text,omitempty"`
	Caption   string    `json:"caption,omitempty"`
	ParseMode string    `json:"parse_mode,omitempty"`
	Photo     string    `json:"photo,omitempty"`
	At        time.Time `json:"at"`
}

// Connector records deliveries in memory and, when Journal is set, appends
// them to that file as JSON lines (so a restart can prove what went out once).
type Connector struct {
	// Journal is the path of a JSON-lines file to append to; "" keeps
	// messages in memory only. The journal holds message content: it lives
	// in the data directory, readable by the owner only.
	Journal string

	mu       sync.Mutex
	messages []Message
	nextID   map[string]int64
}

// Send records d and returns a receipt with a per-chat increasing message id.
func (c *Connector) Send(ctx context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Receipt{}, &connectors.RetryableError{Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nextID == nil {
		c.nextID = map[string]int64{}
	}
	id := d.MessageID
	if d.Kind != connectors.KindEditMessage && d.Kind != connectors.KindDeleteMessage && d.Kind != connectors.KindPinMessage &&
		d.Kind != connectors.KindUnpinMessage && d.Kind != connectors.KindEditCaption {
		c.nextID[d.ChatID]++
		id = c.nextID[d.ChatID]
	}
	m := Message{ActionID: d.ActionID, Account: d.Account.ID, Kind: d.Kind, ChatID: d.ChatID, MessageID: id,
		Text: d.Text, Caption: d.Caption, ParseMode: d.ParseMode, At: time.Now().UTC()}
	if d.PhotoURL != "" {
		m.Photo = d.PhotoURL
	} else if d.PhotoFileID != "" {
		m.Photo = d.PhotoFileID
	}
	if c.Journal != "" {
		if err := appendJournal(c.Journal, m); err != nil {
			// Nothing was recorded, so nothing counts as sent: retry.
			return connectors.Receipt{}, &connectors.RetryableError{After: time.Second, Scope: "sandbox", Err: err}
		}
	}
	c.messages = append(c.messages, m)
	return connectors.Receipt{MessageID: id, ChatID: d.ChatID, At: m.At, Connector: "sandbox"}, nil
}

func appendJournal(path string, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("sandbox journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("sandbox journal: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("sandbox journal: %w", err)
	}
	return f.Close()
}

// Messages returns a copy of what was recorded by this process.
func (c *Connector) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.messages...)
}

// ReadJournal returns every message recorded in a journal file.
func ReadJournal(path string) ([]Message, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sandbox journal: %w", err)
	}
	var out []Message
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var m Message
		if err := dec.Decode(&m); err != nil {
			return out, fmt.Errorf("read sandbox journal: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}
