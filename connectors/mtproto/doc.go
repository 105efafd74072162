// Package mtproto delivers Herald actions through Telegram's MTProto API
// (github.com/gotd/td), as a user account or as a bot logged in over MTProto
// (auth.importBotAuthorization).
//
// The package has three layers, each usable and tested on its own:
//
//   - [FloodWait], a telegram.Middleware that waits out a short FLOOD_WAIT
//     once per call and turns a long one into a connectors.RetryableError
//     scoped to the method ("method:messages.sendMessage"), remembering the
//     wait so later calls of that method fail fast without touching Telegram;
//   - classification (classify.go), which maps Telegram's RPC errors and
//     transport failures to the connectors error classes;
//   - [Connector], which keeps one live MTProto client per account (started
//     lazily, stopped by Close), resolves peers (with a cached, rate-limited
//     contacts.resolveUsername), adds a small random jitter before each send,
//     and implements connectors.Connector.
//
// Secrets never touch disk or errors: api_id/api_hash and bot tokens come
// from [Credentials], the MTProto session (which holds the account's auth
// key) is loaded from and saved to a [SessionStore] backed by the secrets
// store, and no error text carries any of them.
//
// Sent or not sent: the connector counts writes on the account's connections.
// A failure with no write since the call began is retryable (nothing left
// the process); a failure after a write is connectors.UnknownError, because
// Telegram may have acted. Sends carry a random_id derived from the action id
// alone, so Telegram itself deduplicates a resend of the same action.
package mtproto
