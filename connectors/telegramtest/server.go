package telegramtest

import (
	"hash/fnv"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Server is the fake. It is safe for concurrent use; one mutex serialises
// the bookkeeping, which is far faster than the limits it enforces.
type Server struct {
	opts Options
	ts   *httptest.Server

	mu      sync.Mutex
	rng     *rand.Rand
	tokens  map[string]string // token → bot id
	revoked map[string]bool
	scripts map[string]Behaviour
	buckets map[string]*rate.Limiter // "bot:<id>", "chat:<bot>:<chat>", "group:<bot>:<chat>"
	slow    map[string]time.Time     // chat → last message under slow mode
	nextID  map[string]int64         // chat → last message id
	live    map[string]map[int64]*liveMessage
	records []Message
	stats   Stats
}

type liveMessage struct {
	text    string
	deleted bool
	pinned  bool
	media   bool // a photo: its text is the caption
}

// New starts a fake on a loopback port. Close it when done.
func New(opts Options) *Server {
	s := NewUnstarted(opts)
	s.ts = httptest.NewServer(s.Handler())
	return s
}

// NewUnstarted returns a fake without a listener; serve Handler yourself.
func NewUnstarted(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:    opts,
		rng:     rand.New(rand.NewSource(opts.Seed)),
		tokens:  make(map[string]string),
		revoked: make(map[string]bool),
		scripts: make(map[string]Behaviour),
		buckets: make(map[string]*rate.Limiter),
		slow:    make(map[string]time.Time),
		nextID:  make(map[string]int64),
		live:    make(map[string]map[int64]*liveMessage),
	}
	for _, t := range opts.Tokens {
		s.AddToken(t)
	}
	return s
}

// URL is the base URL to configure a client with ("http://127.0.0.1:port"),
// or "" for an unstarted server.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Close shuts the listener down (no-op for an unstarted server).
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// Handler serves the Bot API at /bot<token>/<method>.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// AddToken makes token valid.
func (s *Server) AddToken(token string) {
	bot, _, _ := strings.Cut(token, ":")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = bot
	delete(s.revoked, token)
}

// RevokeToken makes token invalid, as /revoke in BotFather does.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
	s.revoked[token] = true
}

// botFor returns the bot id of a valid token. s.mu must be held.
func (s *Server) botFor(token string) (string, bool) {
	if bot, ok := s.tokens[token]; ok {
		return bot, true
	}
	if !s.opts.AcceptAnyToken || s.revoked[token] {
		return "", false
	}
	bot, secret, ok := strings.Cut(token, ":")
	if !ok || secret == "" {
		return "", false
	}
	if _, err := strconv.ParseInt(bot, 10, 64); err != nil {
		return "", false
	}
	return bot, true
}

// chatNumber gives a numeric id for a chat: the id itself, or a stable
// channel-style id for an @username.
func chatNumber(chat string) int64 {
	if n, err := strconv.ParseInt(chat, 10, 64); err == nil {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(chat))
	return -1000000000000 - int64(h.Sum32())
}

func chatType(chat string) string {
	switch {
	case strings.HasPrefix(chat, "@"):
		return "channel"
	case strings.HasPrefix(chat, "-100"):
		return "supergroup"
	case strings.HasPrefix(chat, "-"):
		return "group"
	}
	return "private"
}

func isGroup(chat string) bool { return chatType(chat) != "private" }
