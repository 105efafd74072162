package telemetry

import (
	"context"
	"log/slog"
)

// EventKey is the log attribute naming a line's event.
const EventKey = "event"

// UnlistedEvent marks a message missing from the catalogue. The catalogue
// test (TestEveryLogMessageHasAnEvent) keeps it from shipping.
const UnlistedEvent = "unlisted"

// Events is the catalogue of log events: every message Herald logs, mapped
// to its stable event name. Log-pattern alerts and dashboards match on the
// event, never on the message, so a message's wording may change while its
// event MUST NOT. docs/operations.md ("Log events") documents each event; a
// test holds code, catalogue and documentation together.
//
// A call site may also name its event itself (slog attribute "event"); the
// handler then leaves it alone.
var Events = map[string]string{
	// HTTP API (gateway)
	"request":          "http.request",
	"internal error":   "http.internal_error",
	"panic in handler": "http.panic",
	"key created; access reload failed, the watcher applies it":    "access.reload_deferred",
	"person revoked; access reload failed, the watcher applies it": "access.reload_deferred",
	"person invited; access reload failed, the watcher applies it": "access.reload_deferred",
	"org deleted; access reload failed, the watcher applies it":    "access.reload_deferred",
	"org created; access reload failed, the watcher applies it":    "access.reload_deferred",
	"pruned facade calls":            "worker.facade_calls_pruned",
	"prune facade calls":             "worker.facade_calls_prune_failed",
	"facade: record call":            "facade.record_call_failed",
	"facade: authenticate":           "facade.unavailable",
	"facade: forward failed":         "facade.forward_failed",
	"facade: infrastructure fault":   "facade.unavailable",
	"facade: prune updates":          "facade.updates_prune_failed",
	"facade: pruned updates":         "facade.updates_pruned",
	"facade: list webhooks":          "facade.unavailable",
	"facade: record webhook error":   "facade.unavailable",
	"facade: webhook forward failed": "facade.webhook_failed",
	"register subject request gauge": "http.metric_register_failed",
	"database unavailable":           "http.database_unavailable",
	"write import answer":            "http.import_answer_failed",
	"database unavailable; retrying": "worker.database_retry",
	// serve: start-up and shutdown
	"database ready":            "serve.database_ready",
	"policy bundle active":      "serve.policy_bundle_active",
	"ledger checkpoints signed": "serve.ledger_signer_ready",
	"tracing enabled":           "serve.tracing_enabled",
	"herald listening":          "serve.listening",
	"shutting down: finishing in-flight requests and sends": "serve.shutting_down",
	"http shutdown": "serve.http_shutdown_failed",
	"stopped":       "serve.stopped",
	// policy
	"policy: an active bundle could not be loaded":                   "policy.bundle_load_failed",
	"policy bundle could not be loaded; keeping the previous engine": "policy.reload_failed",
	"policy refresh": "policy.refresh_failed",
	"policy evaluation failed; denied fail-closed":  "policy.eval_failed",
	"policy evaluation failed; denying fail-closed": "policy.eval_failed",
	"policy evaluation unavailable; answered 503":   "policy.unavailable",
	"policy evaluation unavailable; send retried":   "policy.unavailable",
	// delivery worker
	"claim jobs":              "worker.claim_failed",
	"account lease":           "worker.lease_failed",
	"release account lease":   "worker.lease_release_failed",
	"hand back job":           "worker.hand_back_failed",
	"hand back queued jobs":   "worker.hand_back_failed",
	"handed back queued jobs": "worker.handed_back",
	"deliver action":          "worker.deliver_failed",
	"prune send counters":     "worker.counters_prune_failed",
	"pruned send counters":    "worker.counters_pruned",
	// delivery outcomes
	"delivered":                                        "delivery.delivered",
	"delivery will be retried":                         "delivery.retry",
	"delivery failed permanently":                      "delivery.failed",
	"delivery outcome unknown":                         "delivery.unknown",
	"account stopped by Telegram":                      "delivery.account_stopped",
	"chat migrated to a supergroup; update the target": "delivery.chat_migrated",
	// approvals
	"approvals expired": "approvals.expired",
	"expire approvals":  "approvals.expire_failed",
	// access
	"access: bindings reloaded":                                  "access.reloaded",
	"access: reload bindings":                                    "access.reload_failed",
	"access: listener disconnected; polling until it reconnects": "access.listener_disconnected",
	// ledger
	"ledger checkpoint signed": "ledger.checkpoint_signed",
	"ledger checkpoint":        "ledger.checkpoint_failed",
	"ledger checkpoints":       "ledger.checkpoint_failed",
	"ledger export":            "ledger.export_failed",
	"ledger csv export":        "ledger.export_failed",
	"ledger retention":         "retention.failed",
	"ledger retention: no ledger logs configured, entries are not pruned": "retention.pruning_disabled",
	"ledger signing key changed":                                          "ledger.signing_key_changed",
	"refresh ledger signing key":                                          "ledger.signing_key_refresh_failed",
	// secrets and rotation
	"secret rotated":         "secrets.rotated",
	"secret rotation failed": "secrets.rotation_failed",
	"record rotation":        "secrets.rotation_record_failed",
	// Vault
	"vault login succeeded":                                   "vault.login",
	"vault login failed; retrying":                            "vault.login_failed",
	"vault token was refused; logged in again":                "vault.relogin",
	"vault login after permission denied failed":              "vault.relogin_failed",
	"vault token renewed":                                     "vault.token_renewed",
	"vault token renewal ended; logging in again":             "vault.renewal_ended",
	"vault token reached its renewal limit; logging in again": "vault.renewal_limit",
	"vault token watcher":                                     "vault.watcher_failed",

	// web console (issue 17)
	"console: request without a valid CSRF token refused": "console.csrf_refused",
	"console: page failed":                                "console.page_failed",
	"console: render failed":                              "console.render_failed",
	"console: session could not be stored":                "console.session_store_failed",
	"console: signed in":                                  "console.signed_in",
}

// EventHandler wraps h so every record carries a stable "event" attribute
// taken from the Events catalogue (or UnlistedEvent), unless the call site
// named one. It costs one map lookup per record.
func EventHandler(h slog.Handler) slog.Handler { return eventHandler{h} }

type eventHandler struct{ h slog.Handler }

func (e eventHandler) Enabled(ctx context.Context, l slog.Level) bool { return e.h.Enabled(ctx, l) }

func (e eventHandler) Handle(ctx context.Context, r slog.Record) error {
	named := false
	r.Attrs(func(a slog.Attr) bool {
		named = a.Key == EventKey
		return !named
	})
	if !named {
		ev, ok := Events[r.Message]
		if !ok {
			ev = UnlistedEvent
		}
		r = r.Clone()
		r.AddAttrs(slog.String(EventKey, ev))
	}
	return e.h.Handle(ctx, r)
}

func (e eventHandler) WithAttrs(as []slog.Attr) slog.Handler { return eventHandler{e.h.WithAttrs(as)} }
func (e eventHandler) WithGroup(name string) slog.Handler    { return eventHandler{e.h.WithGroup(name)} }
