package facade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
)

// Inbound serves the facade's inbound methods (setWebhook, deleteWebhook,
// getWebhookInfo, getUpdates) and forwards queued updates to bots'
// webhooks. Updates reach it only through Herald's own webhook with
// Telegram (gateway/telegram.go), after opt-out processing: the queue holds
// processed updates only.
//
// Invariants:
//   - An update MUST reach the bot only after Herald committed what it
//     means for consent (it is queued in that transaction).
//   - The bot's webhook URL and secret_token MUST NOT be logged: URLs of
//     bots often carry a token.
//   - Forwarding is at least once, as Telegram's is: a bot that fails to
//     answer 2xx gets the update again; bots dedupe by update_id.
type Inbound struct {
	Store InboundStore
	// HTTP forwards updates (nil = a client with a 10 s timeout).
	HTTP *http.Client
	Log  *slog.Logger
	// AllowHTTP accepts http:// webhook URLs (development and tests);
	// Telegram, and Herald by default, require https.
	AllowHTTP bool
	// MaxPoll bounds a getUpdates long poll (DefaultMaxPoll); it must stay
	// below the HTTP server's write timeout.
	MaxPoll time.Duration
	// Poll is how often a waiting getUpdates and the forwarder look at the
	// queue when no in-process notification came (another replica received
	// the update); DefaultInboundPoll.
	Poll time.Duration

	mu      sync.Mutex
	signals map[string]chan struct{}
	wake    chan struct{}
	once    sync.Once
}

// InboundStore is what Inbound reads and writes; *store.Store implements it.
type InboundStore interface {
	SetFacadeWebhook(ctx context.Context, w store.FacadeWebhook, dropPending bool) error
	DeleteFacadeWebhook(ctx context.Context, org, account string, dropPending bool) (bool, error)
	GetFacadeWebhook(ctx context.Context, org, account string) (store.FacadeWebhook, error)
	FacadeWebhooks(ctx context.Context) ([]store.FacadeWebhook, error)
	RecordFacadeWebhookError(ctx context.Context, org, account, message string) error
	FacadeUpdates(ctx context.Context, org, account string, offset int64, limit int) ([]store.FacadeUpdate, error)
	DeleteFacadeUpdate(ctx context.Context, org, account string, updateID int64) error
	PendingFacadeUpdates(ctx context.Context, org, account string) (int, error)
	PruneFacadeUpdates(ctx context.Context, now time.Time) (int64, error)
	Now() time.Time
}

// Inbound defaults.
const (
	DefaultMaxPoll     = 50 * time.Second
	DefaultInboundPoll = time.Second
)

func (in *Inbound) init() {
	in.once.Do(func() {
		in.signals = map[string]chan struct{}{}
		in.wake = make(chan struct{}, 1)
	})
}

// Queued wakes the getUpdates long polls of acc and the webhook forwarder;
// gateway.Inbound.Queued calls it after an update was queued.
func (in *Inbound) Queued(acc herald.Account) {
	in.init()
	in.mu.Lock()
	if ch, ok := in.signals[acc.ID]; ok {
		close(ch)
		delete(in.signals, acc.ID)
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// signal returns a channel closed at the next update queued for account.
func (in *Inbound) signal(account string) <-chan struct{} {
	in.init()
	in.mu.Lock()
	defer in.mu.Unlock()
	ch, ok := in.signals[account]
	if !ok {
		ch = make(chan struct{})
		in.signals[account] = ch
	}
	return ch
}

func (in *Inbound) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

func (in *Inbound) poll() time.Duration {
	if in.Poll > 0 {
		return in.Poll
	}
	return DefaultInboundPoll
}

// defaultExcluded are the update types Telegram sends only when asked for.
var defaultExcluded = map[string]bool{"chat_member": true, "message_reaction": true, "message_reaction_count": true}

func allowed(list []string, kind string) bool {
	if len(list) == 0 {
		return !defaultExcluded[kind]
	}
	for _, k := range list {
		if k == kind {
			return true
		}
	}
	return false
}

var secretTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// ok answers a successful call with a description, as Telegram does for
// setWebhook and deleteWebhook.
func okTrue(desc string) answer {
	return answer{OK: true, Result: json.RawMessage("true"), Description: desc}
}

func parseAllowed(v string) ([]string, *answer) {
	if v == "" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		a := badRequest("can't parse allowed updates JSON array")
		return nil, &a
	}
	if list == nil {
		list = []string{}
	}
	return list, nil
}

func parseBool(p map[string]string, name string) (bool, *answer) {
	v, ok := p[name]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		a := badRequest(name + " must be a Boolean")
		return false, &a
	}
	return b, nil
}

// inboundCall serves setWebhook, deleteWebhook, getWebhookInfo and getUpdates.
func (h *Handler) inboundCall(ctx context.Context, tok store.FacadeToken, method string, p map[string]string) (answer, string) {
	in := h.Inbound
	drop, bad := parseBool(p, "drop_pending_updates")
	if bad != nil {
		return *bad, "refused"
	}
	switch method {
	case "setWebhook":
		raw := p["url"]
		if raw == "" {
			return h.deleteWebhook(ctx, tok, drop)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !in.AllowHTTP)) {
			return badRequest("bad webhook: An HTTPS URL must be provided for webhook"), "refused"
		}
		secret := p["secret_token"]
		if secret != "" && !secretTokenPattern.MatchString(secret) {
			return badRequest("secret token contains unallowed characters"), "refused"
		}
		maxConn := 40
		if v := p["max_connections"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return badRequest("max_connections must be a Number"), "refused"
			}
			maxConn = min(max(n, 1), 100)
		}
		list, bad := parseAllowed(p["allowed_updates"])
		if bad != nil {
			return *bad, "refused"
		}
		prior, err := in.Store.GetFacadeWebhook(ctx, tok.Org, tok.Account)
		if err != nil && !herald.IsNotFound(err) {
			return h.fault(err)
		}
		if err := in.Store.SetFacadeWebhook(ctx, store.FacadeWebhook{Org: tok.Org, Account: tok.Account, TokenID: tok.ID,
			URL: raw, SecretToken: secret, MaxConnections: maxConn, AllowedUpdates: list}, drop); err != nil {
			return h.fault(err)
		}
		in.Queued(herald.Account{ID: tok.Account, Org: tok.Org}) // forward what is waiting
		if err == nil && prior.URL == raw {
			return okTrue("Webhook is already set"), "inbound"
		}
		return okTrue("Webhook was set"), "inbound"
	case "deleteWebhook":
		return h.deleteWebhook(ctx, tok, drop)
	case "getWebhookInfo":
		n, err := in.Store.PendingFacadeUpdates(ctx, tok.Org, tok.Account)
		if err != nil {
			return h.fault(err)
		}
		info := map[string]any{"url": "", "has_custom_certificate": false, "pending_update_count": n}
		w, err := in.Store.GetFacadeWebhook(ctx, tok.Org, tok.Account)
		switch {
		case err == nil:
			info["url"] = w.URL
			info["max_connections"] = w.MaxConnections
			if w.AllowedUpdates != nil {
				info["allowed_updates"] = w.AllowedUpdates
			}
			if w.LastErrorAt != nil {
				info["last_error_date"] = w.LastErrorAt.Unix()
				info["last_error_message"] = w.LastErrorMessage
			}
		case !herald.IsNotFound(err):
			return h.fault(err)
		}
		raw, _ := json.Marshal(info)
		return answer{OK: true, Result: raw}, "inbound"
	case "getUpdates":
		return h.getUpdates(ctx, tok, p)
	}
	return fail(http.StatusForbidden, "Forbidden: herald.facade.inbound: "+method+
		" is not available through Herald: it would log Herald's bot out (docs/facade.md)", nil), "refused"
}

func (h *Handler) deleteWebhook(ctx context.Context, tok store.FacadeToken, drop bool) (answer, string) {
	existed, err := h.Inbound.Store.DeleteFacadeWebhook(ctx, tok.Org, tok.Account, drop)
	if err != nil {
		return h.fault(err)
	}
	if !existed {
		return okTrue("Webhook is already deleted"), "inbound"
	}
	return okTrue("Webhook was deleted"), "inbound"
}

// getUpdates serves the account's queue with Telegram's semantics: offset
// confirms earlier updates, limit 1–100, timeout long-polls.
func (h *Handler) getUpdates(ctx context.Context, tok store.FacadeToken, p map[string]string) (answer, string) {
	in := h.Inbound
	if _, err := in.Store.GetFacadeWebhook(ctx, tok.Org, tok.Account); err == nil {
		return fail(http.StatusConflict, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", nil), "refused"
	} else if !herald.IsNotFound(err) {
		return h.fault(err)
	}
	num := func(name string, def int64) (int64, *answer) {
		v := p[name]
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			a := badRequest(name + " must be a Number")
			return 0, &a
		}
		return n, nil
	}
	offset, bad := num("offset", 0)
	if bad != nil {
		return *bad, "refused"
	}
	limit, bad := num("limit", 100)
	if bad != nil {
		return *bad, "refused"
	}
	limit = min(max(limit, 1), 100)
	timeout, bad := num("timeout", 0)
	if bad != nil {
		return *bad, "refused"
	}
	list, bad := parseAllowed(p["allowed_updates"])
	if bad != nil {
		return *bad, "refused"
	}
	maxPoll := in.MaxPoll
	if maxPoll <= 0 {
		maxPoll = DefaultMaxPoll
	}
	wait := min(time.Duration(max(timeout, 0))*time.Second, maxPoll)
	deadline := time.Now().Add(wait)
	for {
		// Take the signal before reading, so an update queued between the
		// read and the wait is not missed.
		sig := in.signal(tok.Account)
		us, err := in.Store.FacadeUpdates(ctx, tok.Org, tok.Account, offset, int(limit))
		if err != nil {
			return h.fault(err)
		}
		if offset < 0 && len(us) > 0 {
			offset = us[0].UpdateID // the rest is forgotten; keep reading from here
		}
		out := make([]json.RawMessage, 0, len(us))
		for _, u := range us {
			if !allowed(list, u.Kind) {
				continue
			}
			out = append(out, u.Payload)
		}
		left := time.Until(deadline)
		if len(out) > 0 || left <= 0 {
			raw, _ := json.Marshal(out)
			return answer{OK: true, Result: raw}, "inbound"
		}
		if len(us) > 0 {
			// Only filtered-out updates: they are confirmed, as Telegram
			// drops updates a bot did not ask for.
			offset = us[len(us)-1].UpdateID + 1
		}
		t := time.NewTimer(min(left, in.poll()))
		select {
		case <-ctx.Done():
			t.Stop()
			return answer{OK: true, Result: json.RawMessage("[]")}, "inbound"
		case <-sig:
		case <-t.C:
		}
		t.Stop()
	}
}

// Run forwards queued updates to the webhooks bots registered, until ctx
// ends, and prunes updates nobody read within a day.
func (in *Inbound) Run(ctx context.Context) error {
	in.init()
	hc := in.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	backoff := map[string]time.Time{}
	failures := map[string]int{}
	prune := time.Now()
	for {
		if time.Now().After(prune) {
			prune = time.Now().Add(time.Hour)
			if n, err := in.Store.PruneFacadeUpdates(ctx, in.Store.Now()); err != nil && ctx.Err() == nil {
				in.log().Error("facade: prune updates", "err", err)
			} else if n > 0 {
				in.log().Debug("facade: pruned updates", "rows", n)
			}
		}
		hooks, err := in.Store.FacadeWebhooks(ctx)
		if err != nil && ctx.Err() == nil {
			in.log().Error("facade: list webhooks", "err", err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, w := range hooks {
			if time.Now().Before(backoff[w.Account]) {
				continue
			}
			wg.Add(1)
			go func(w store.FacadeWebhook) {
				defer wg.Done()
				ferr := in.forward(ctx, hc, w)
				mu.Lock()
				defer mu.Unlock()
				if ferr == nil {
					delete(failures, w.Account)
					delete(backoff, w.Account)
					return
				}
				failures[w.Account]++
				// Telegram backs off a failing webhook too; at most a minute.
				backoff[w.Account] = time.Now().Add(min(time.Duration(math.Pow(2, float64(failures[w.Account])))*time.Second/2, time.Minute))
			}(w)
		}
		wg.Wait()
		t := time.NewTimer(in.poll())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-in.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// forward posts an account's queued updates to its webhook, in order; an
// update is deleted once the bot answered 2xx.
func (in *Inbound) forward(ctx context.Context, hc *http.Client, w store.FacadeWebhook) error {
	for {
		us, err := in.Store.FacadeUpdates(ctx, w.Org, w.Account, 0, 100)
		if err != nil {
			return err
		}
		if len(us) == 0 {
			return nil
		}
		for _, u := range us {
			if allowed(w.AllowedUpdates, u.Kind) {
				if err := in.post(ctx, hc, w, u.Payload); err != nil {
					if rerr := in.Store.RecordFacadeWebhookError(ctx, w.Org, w.Account, err.Error()); rerr != nil {
						in.log().Error("facade: record webhook error", "err", rerr)
					}
					in.log().Warn("facade: webhook forward failed", "account", w.Account)
					return err
				}
			}
			if err := in.Store.DeleteFacadeUpdate(ctx, w.Org, w.Account, u.UpdateID); err != nil {
				return err
			}
		}
	}
}

func (in *Inbound) post(ctx context.Context, hc *http.Client, w store.FacadeWebhook, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(payload))
	if err != nil {
		return errors.New("Bad webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	if w.SecretToken != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", w.SecretToken)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The *url.Error names the URL: keep Telegram's generic text.
		return errors.New("Connection failed")
	}
	// The bot's answer is not executed: a webhook reply would be a call
	// Herald did not govern.
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("Wrong response from the webhook: %s", resp.Status)
	}
	return nil
}
