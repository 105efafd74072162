package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/telemetry"
)

// config is every setting, from flags, HERALD_* environment variables and
// an optional YAML file, in that order of precedence.
type config struct {
	Listen          string
	DataDir         string
	DatabaseURL     string
	LogLevel        string
	Worker          bool
	WorkerID        string
	PolicyDir       string
	PolicyTimeout   time.Duration
	ShutdownTimeout time.Duration
	BotAPIURL       string
	BotPerSecond    float64
	OptOutKeywords  []string
	OptOutReply     string
	JobLease        time.Duration
	AccountLease    time.Duration
	SendTimeout     time.Duration
	Secrets         secretsConfig
	MaxApprovalWait time.Duration
	FacadeWait      time.Duration
	SessionTTL      time.Duration
	LoginMaxAge     time.Duration
	RateLimits      rateLimitConfig
}

// storeFlags are the settings every command that opens the database shares.
func storeFlags(fs *pflag.FlagSet, c *config) {
	fs.String("config", "", "path of a YAML configuration file (keys are the flag names)")
	fs.StringVar(&c.DataDir, "data-dir", "./herald-data", "directory for the embedded database and local state")
	fs.StringVar(&c.DatabaseURL, "database-url", "", `database: "postgres://…" for PostgreSQL; empty = embedded SQLite in --data-dir`)
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func serveFlags(fs *pflag.FlagSet, c *config) {
	storeFlags(fs, c)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address the HTTP API listens on")
	fs.BoolVar(&c.Worker, "worker", true, "run the delivery worker in this process")
	fs.StringVar(&c.WorkerID, "worker-id", "", "lease owner name of this process's worker (default: host name and pid)")
	fs.StringVar(&c.PolicyDir, "policy-dir", "", "directory of a Rego policy bundle to use instead of the built-in default")
	fs.DurationVar(&c.PolicyTimeout, "policy-timeout", policies.DefaultEvalTimeout, "deadline of one policy evaluation; a miss answers 503 policy_unavailable (submit) or retries the send, never denies")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests and sends")
	fs.StringVar(&c.BotAPIURL, "botapi-url", "https://api.telegram.org", "Telegram Bot API base URL (a local Bot API server, or 'herald dev telegram-fake')")
	fs.Float64Var(&c.BotPerSecond, "bot-rate", 30, "messages per second per bot (Telegram's free limit is about 30)")
	secretsFlags(fs, &c.Secrets)
	rateLimitFlags(fs, &c.RateLimits)
	fs.DurationVar(&c.SessionTTL, "session-ttl", 15*time.Minute, "lifetime of a session token issued by Telegram login")
	fs.DurationVar(&c.LoginMaxAge, "login-max-age", 24*time.Hour, "oldest Telegram Login Widget auth_date accepted (login bot token: secret herald/login-bot, key token)")
	fs.DurationVar(&c.FacadeWait, "facade-wait", 10*time.Second, "how long a Bot API facade call waits for its delivery before answering 429 retry_after (docs/facade.md)")
	fs.DurationVar(&c.MaxApprovalWait, "max-approval-wait", 72*time.Hour, "an action waiting for approval longer than this (or past its schedule) expires")
	fs.DurationVar(&c.JobLease, "job-lease", 2*time.Minute, "how long a claimed delivery job is invisible to other workers; a dead worker's jobs are retaken after it")
	fs.DurationVar(&c.AccountLease, "account-lease", 15*time.Second, "how long an account's send lease lasts without renewal (one sender per account across workers)")
	fs.DurationVar(&c.SendTimeout, "send-timeout", 30*time.Second, "longest single call to Telegram; must be well below --job-lease")
	fs.StringSliceVar(&c.OptOutKeywords, "opt-out-keywords", nil, "inbound messages that opt a person out (default: stop, unsubscribe, стоп, отписаться, … in several languages; /stop always)")
	fs.StringVar(&c.OptOutReply, "opt-out-reply", "", "confirmation sent after an opt-out (default: an English sentence)")
}

// envName is the environment variable of a flag: --database-url → HERALD_DATABASE_URL.
func envName(flag string) string {
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configHelp is appended to each command's help.
const configHelp = `
Every flag can also be set as an environment variable HERALD_<FLAG> (e.g. HERALD_DATABASE_URL)
or as a key in the YAML file named by --config / HERALD_CONFIG (e.g. "database-url: postgres://…").
Flags win over the environment, which wins over the file.`

// resolve fills flags the user did not set from the environment, then from
// the YAML file.
func resolve(cmd *cobra.Command) error {
	fs := cmd.Flags()
	file, _ := fs.GetString("config")
	if !fs.Changed("config") {
		if v, ok := os.LookupEnv(envName("config")); ok {
			file = v
		}
	}
	fileValues := map[string]any{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read config file: %w", err)
		}
		if err := yaml.Unmarshal(b, &fileValues); err != nil {
			return fmt.Errorf("parse config file %s: %w", file, err)
		}
		for k := range fileValues {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("config file %s: unknown key %q", file, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			if e := f.Value.Set(fmt.Sprint(v)); e != nil {
				err = fmt.Errorf("config file key %s=%v: %w", f.Name, v, e)
			}
		}
	})
	return err
}

// databaseURL is the configured database, or the embedded default.
func (c *config) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + filepath.Join(c.DataDir, "herald.db")
}

func (c *config) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	// Every line carries a stable "event" (docs/operations.md, "Log events").
	return slog.New(telemetry.EventHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))), nil
}

// cliLogger is the logger of one-shot commands (keys, orgs, secrets, …):
// their result goes to standard output, so informational log lines
// ("database ready") would only be noise; warnings and errors still show,
// and --log-level debug shows everything.
func (c *config) cliLogger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if level == slog.LevelInfo {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
