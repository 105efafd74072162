// Package botapi delivers Herald actions through the Telegram Bot API.
//
// It has two layers: [Client], a thin typed client of the few Bot API
// methods Herald uses, which reports Telegram's answers as *[APIError] and
// broken connections as *[TransportError]; and [Connector], which implements
// connectors.Connector on top of it and classifies every outcome into the
// connectors error classes from Telegram's real error texts (see
// classify.go and docs/connectors.md).
//
// Bot tokens are fetched per send from a [TokenSource] and never stored,
// logged, or put into an error: request URLs contain the token, so errors
// from net/http are rewritten with the token redacted.
//
// The connector never retries a request that may have reached Telegram. It
// retries on its own only where Telegram has provably not acted: once after
// a 401 with a refreshed token, and once to the new chat id after
// "group chat was upgraded to a supergroup chat".
package botapi
