package mtproto

import (
	"context"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"

	"github.com/heraldhq/herald/connectors"
)

// ConnectorName is what receipts from this package carry.
const ConnectorName = "mtproto"

// Defaults. Each is conservative on purpose: a user account that behaves like
// a bot is answered with PEER_FLOOD, which stops it for a day or more.
const (
	// DefaultFloodWaitThreshold: a FLOOD_WAIT up to this long is waited out
	// in place and the call retried once; a worker goroutine may block this
	// long, which is about what a per-chat pace costs anyway. Anything longer
	// goes back to the worker as RetryableError so it can reschedule.
	DefaultFloodWaitThreshold = 5 * time.Second
	// DefaultJitterMin and DefaultJitterMax bound the random pause before
	// each send. Evenly spaced sends are a bot signature; a person's pace is
	// irregular. The rate itself is the limiter's job, not the jitter's.
	DefaultJitterMin = 200 * time.Millisecond
	DefaultJitterMax = 1500 * time.Millisecond
	// DefaultResolveTTL: a username can change hands, but rarely, and every
	// contacts.resolveUsername counts against a small daily budget, so a
	// resolved peer is reused for a day.
	DefaultResolveTTL = 24 * time.Hour
	// DefaultResolveCacheSize bounds memory per account; past it the least
	// recently used usernames are resolved again.
	DefaultResolveCacheSize = 4096
	// DefaultResolvePerMinute and DefaultResolveBurst: Telegram answers
	// bursts of contacts.resolveUsername from user accounts with FLOOD_WAITs
	// of hours. Two a minute with a burst of three covers a campaign that
	// addresses people by @username without resembling a scraper.
	DefaultResolvePerMinute = 2.0
	DefaultResolveBurst     = 3
	// DefaultResolveMaxWait is how long a send may wait for a resolve token
	// before it is handed back to the worker as retryable.
	DefaultResolveMaxWait = 5 * time.Second
	// PeerFloodFreeze is how long PEER_FLOOD stops an account. Telegram does
	// not say how long its spam limit lasts; a day is the common experience
	// and a person can resume the account earlier.
	PeerFloodFreeze = 24 * time.Hour
)

// SessionStore keeps the MTProto session of each account (it contains the
// account's auth key: as sensitive as a password). Production backs it by
// the secrets store (Vault KV, or the encrypted local file); it is never a
// plain file. Load returns nil data and a nil error when the account has no
// session yet.
type SessionStore interface {
	Load(ctx context.Context, account connectors.Account) ([]byte, error)
	Store(ctx context.Context, account connectors.Account, data []byte) error
}

// Credentials gives an account's application credentials (api_id/api_hash
// from my.telegram.org) and, for bots over MTProto, the bot token. They are
// read when the account's client starts, so a rotation takes effect at the
// next start (after Close, or after the client died).
type Credentials interface {
	AppCredentials(ctx context.Context, account connectors.Account) (appID int, appHash string, err error)
	BotToken(ctx context.Context, account connectors.Account) (string, error)
}

// Config configures a Connector. Credentials and Sessions are required; the
// zero value of every other field means Telegram's production network and
// the defaults above.
type Config struct {
	Credentials Credentials
	Sessions    SessionStore

	// DC is the first data center to connect to when an account has no
	// session (the session remembers its DC afterwards); 0 means 2.
	DC int
	// DCList lists the data centers' addresses; zero means Telegram's
	// production list. Tests point it at gotd's tgtest cluster.
	DCList dcs.List
	// PublicKeys of the servers; nil means Telegram's, embedded in gotd.
	PublicKeys []telegram.PublicKey
	// Protocol is the MTProto transport; nil means intermediate.
	Protocol dcs.Protocol
	// Dial opens TCP connections; nil means net.Dialer. Wrap it for a proxy.
	Dial dcs.DialFunc

	// JitterMin and JitterMax bound the random pause before each send; both
	// zero means the defaults. NoJitter turns the pause off (tests, bots).
	JitterMin, JitterMax time.Duration
	NoJitter             bool

	// FloodWaitThreshold: FLOOD_WAITs up to this long are waited out once;
	// 0 means DefaultFloodWaitThreshold, negative means never wait.
	FloodWaitThreshold time.Duration
	// MethodFloodWaitThreshold overrides the threshold per method, keyed by
	// the TL name ("messages.sendMessage").
	MethodFloodWaitThreshold map[string]time.Duration

	// Username resolution: cache TTL and size, and the per-account rate.
	ResolveTTL       time.Duration
	ResolveCacheSize int
	ResolvePerMinute float64
	ResolveBurst     int
	ResolveMaxWait   time.Duration

	// Device is shown in the account's list of active sessions; zero means
	// "Herald".
	Device telegram.DeviceConfig
}

func (c Config) withDefaults() Config {
	if c.JitterMin == 0 && c.JitterMax == 0 {
		c.JitterMin, c.JitterMax = DefaultJitterMin, DefaultJitterMax
	}
	if c.JitterMax < c.JitterMin {
		c.JitterMax = c.JitterMin
	}
	if c.FloodWaitThreshold == 0 {
		c.FloodWaitThreshold = DefaultFloodWaitThreshold
	}
	if c.ResolveTTL <= 0 {
		c.ResolveTTL = DefaultResolveTTL
	}
	if c.ResolveCacheSize <= 0 {
		c.ResolveCacheSize = DefaultResolveCacheSize
	}
	if c.ResolvePerMinute <= 0 {
		c.ResolvePerMinute = DefaultResolvePerMinute
	}
	if c.ResolveBurst <= 0 {
		c.ResolveBurst = DefaultResolveBurst
	}
	if c.ResolveMaxWait <= 0 {
		c.ResolveMaxWait = DefaultResolveMaxWait
	}
	if c.Device.DeviceModel == "" {
		c.Device = telegram.DeviceConfig{DeviceModel: "Herald", AppVersion: "herald", SystemVersion: "server"}
	}
	return c
}
