package telegramtest

import "time"

// Telegram's flood limits as the fake enforces them. Telegram publishes them
// only approximately ("or so", "short bursts"), so the fake picks the
// strictest reading that is still consistent with Telegram's FAQ; Herald's
// own limiter must stay under these with margin.
const (
	// BotPerSecond: "not more than 30 messages per second or so" per bot.
	BotPerSecond = 30.0
	// BotBurst allows one second's worth at once.
	BotBurst = 30
	// ChatPerSecond: "avoid sending more than one message per second" in a chat.
	ChatPerSecond = 1.0
	// ChatBurst: Telegram "may allow short bursts that go over this limit".
	ChatBurst = 5
	// GroupPerMinute: "not more than 20 messages per minute to the same group".
	GroupPerMinute = 20.0
	// GroupBurst lets a whole minute's budget go at once, as Telegram does.
	GroupBurst = 20
	// MaxTextLength is sendMessage's limit in characters after entity parsing.
	MaxTextLength = 4096
	// MaxCaptionLength is sendPhoto's caption limit.
	MaxCaptionLength = 1024
)

// Options configure a Server. Zero values take the constants above.
type Options struct {
	// Tokens the fake accepts ("<bot id>:<secret>"); more can be added
	// with AddToken. Any other token is answered 401 Unauthorized.
	Tokens []string
	// AcceptAnyToken accepts every token shaped "<bot id>:<secret>" that
	// was not revoked, for demos where bots are created on the fly.
	AcceptAnyToken bool

	BotPerSecond   float64
	BotBurst       int
	ChatPerSecond  float64
	ChatBurst      int
	GroupPerMinute float64
	GroupBurst     int
	// NoLimits turns flood control off, to measure the client alone.
	NoLimits bool

	// ServerErrorRate is the fraction of requests answered 500 Internal
	// Server Error without being executed.
	ServerErrorRate float64
	// DropBeforeRate is the fraction of requests whose connection is
	// closed without executing them.
	DropBeforeRate float64
	// DropAfterRate is the fraction of requests that are executed and
	// recorded, after which the connection is closed without an answer:
	// the case a client cannot tell from DropBeforeRate, which is why
	// Herald classifies both as outcome unknown.
	DropAfterRate float64
	// ResponseDelay holds every successful answer back this long after the
	// call was executed and recorded (to kill a client mid-send in tests).
	ResponseDelay time.Duration
	// Seed seeds the fault injection; runs with the same seed and the same
	// request order inject the same faults.
	Seed int64
}

func (o Options) withDefaults() Options {
	if o.BotPerSecond <= 0 {
		o.BotPerSecond = BotPerSecond
	}
	if o.BotBurst <= 0 {
		o.BotBurst = BotBurst
	}
	if o.ChatPerSecond <= 0 {
		o.ChatPerSecond = ChatPerSecond
	}
	if o.ChatBurst <= 0 {
		o.ChatBurst = ChatBurst
	}
	if o.GroupPerMinute <= 0 {
		o.GroupPerMinute = GroupPerMinute
	}
	if o.GroupBurst <= 0 {
		o.GroupBurst = GroupBurst
	}
	return o
}
