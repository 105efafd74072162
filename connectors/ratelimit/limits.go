package ratelimit

import "time"

// Telegram's limits for bots (https://core.telegram.org/bots/faq, "My bot is
// hitting limits"). The bursts are deliberately smaller than what Telegram
// tolerates: network jitter can bunch requests that left evenly spaced, and a
// small burst leaves headroom for it.
const (
	// DefaultBotPerSecond: "the API will not allow more than 30 messages per
	// second or so" for bulk notifications from one bot.
	DefaultBotPerSecond = 30.0
	// DefaultBotBurst is small so that a process taking over an account's
	// lease cannot add a burst on top of what the previous holder just sent.
	DefaultBotBurst = 5
	// DefaultPaidBroadcastPerSecond: with allow_paid_broadcast a bot may send
	// up to 1000 messages per second, billed in Telegram Stars.
	DefaultPaidBroadcastPerSecond = 1000.0
	// DefaultPaidBroadcastBurst scales the bot burst with the paid rate.
	DefaultPaidBroadcastBurst = 50
	// DefaultChatPerSecond: "avoid sending more than one message per second"
	// inside a particular chat.
	DefaultChatPerSecond = 1.0
	// DefaultChatBurst: Telegram "may allow short bursts"; three is enough for
	// a message plus its edit and pin.
	DefaultChatBurst = 3
	// DefaultGroupPerMinute: "your bot will not be able to send more than 20
	// messages per minute to the same group". Channels are treated alike.
	DefaultGroupPerMinute = 20.0
	// DefaultGroupBurst is well below 20 so the per-minute budget is spread
	// out instead of spent in the first seconds of a minute.
	DefaultGroupBurst = 3
	// DefaultUserPerMinute is for MTProto user accounts, which Telegram
	// punishes with PEER_FLOOD when they act like bots; policy data sets the
	// real figure per account with [Limiter.SetAccountLimit].
	DefaultUserPerMinute = 20.0
	// DefaultUserBurst: a person does not fire messages in bursts.
	DefaultUserBurst = 1
	// DefaultMaxWait bounds how long Wait blocks a worker goroutine. A longer
	// wait (a long retry_after, a queue piling up on one group) is returned as
	// a RetryableError so the worker reschedules the job instead of holding a
	// goroutine and a database lease for minutes.
	DefaultMaxWait = 30 * time.Second
	// sweepEvery is how many Waits pass between sweeps of idle chat buckets.
	sweepEvery = 1024
)

// Config sets the limits. The zero value means Telegram's defaults above.
type Config struct {
	BotPerSecond           float64
	BotBurst               int
	PaidBroadcastPerSecond float64
	PaidBroadcastBurst     int
	ChatPerSecond          float64
	ChatBurst              int
	GroupPerMinute         float64
	GroupBurst             int
	UserPerMinute          float64
	UserBurst              int
	MaxWait                time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BotPerSecond, DefaultBotPerSecond)
	defi(&c.BotBurst, DefaultBotBurst)
	def(&c.PaidBroadcastPerSecond, DefaultPaidBroadcastPerSecond)
	defi(&c.PaidBroadcastBurst, DefaultPaidBroadcastBurst)
	def(&c.ChatPerSecond, DefaultChatPerSecond)
	defi(&c.ChatBurst, DefaultChatBurst)
	def(&c.GroupPerMinute, DefaultGroupPerMinute)
	defi(&c.GroupBurst, DefaultGroupBurst)
	def(&c.UserPerMinute, DefaultUserPerMinute)
	defi(&c.UserBurst, DefaultUserBurst)
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	return c
}
