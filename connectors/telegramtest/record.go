package telegramtest

import (
	"slices"
	"time"
)

// Message is one accepted call, as the fake recorded it. Bot is the bot id
// (the token's part before ':'); the token itself is never stored.
type Message struct {
	Bot                 string
	Chat                string
	Method              string
	Text                string // text, or caption for sendPhoto
	ParseMode           string
	Photo               string
	MessageID           int64
	DisableNotification bool
	At                  time.Time
}

// Stats counts what the fake answered.
type Stats struct {
	Accepted        int
	TooManyRequests int // 429s issued
	Unauthorized    int
	ServerErrors    int // injected 5xx
	DroppedBefore   int
	DroppedAfter    int
	OtherErrors     int // 400 and 403 answers
}

// Messages returns a copy of every accepted call, in acceptance order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// MessagesTo returns the accepted calls into one chat.
func (s *Server) MessagesTo(chat string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.records {
		if m.Chat == chat {
			out = append(out, m)
		}
	}
	return out
}

// TooManyRequests returns how many 429 answers the fake issued.
func (s *Server) TooManyRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.TooManyRequests
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
