// Package facade is Herald's Bot API-compatible endpoint: an unmodified bot
// (grammY, Telegraf, python-telegram-bot, aiogram…) points its API root at
// Herald and uses a Herald-issued facade token as its bot token, and every
// call it makes at /bot<token>/<method> is governed.
//
// Governed methods (sendMessage, sendPhoto, editMessageText, deleteMessage,
// pinChatMessage) become Herald actions through the same pipeline as
// POST /v1/actions; the answer is what Telegram would answer, so frameworks
// behave unmodified (see docs/facade.md for the mapping). Other methods are
// forwarded to Telegram with the account's real token.
//
// Invariants:
//   - The real bot token MUST NOT leave Herald: it is read from the secret
//     store per forwarded call and never logged or answered.
//   - A governed method MUST NOT reach Telegram except as a Herald action:
//     a governed method Herald cannot express as an action is refused, never
//     forwarded.
//   - A retried call MUST NOT send twice: an identical call (same token,
//     method and parameters) whose action is still in flight, or finished
//     within Config.DedupWindow, is answered from that action.
//   - Logs and metric labels MUST NOT carry message text, chat ids or tokens.
package facade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// Submitter runs Herald's action pipeline; *gateway.Pipeline implements it.
type Submitter interface {
	Submit(ctx context.Context, p herald.Principal, req gateway.ActionRequest, opt gateway.SubmitOptions) (gateway.SubmitResult, error)
}

// Store is what the facade reads and writes; *store.Store implements it.
type Store interface {
	AuthenticateFacadeToken(ctx context.Context, token string) (store.FacadeToken, error)
	LatestFacadeCall(ctx context.Context, tokenID, callHash string) (string, time.Time, error)
	RecordFacadeCall(ctx context.Context, t store.FacadeToken, callHash, actionID string) error
	GetAction(ctx context.Context, org, id string) (herald.Action, error)
	GetAccount(ctx context.Context, org, id string) (herald.Account, error)
	Now() time.Time
}

// Config tunes the facade. Zero values take the defaults.
type Config struct {
	// Wait bounds how long a governed call waits for its delivery before
	// answering 429 with retry_after (DefaultWait).
	Wait time.Duration
	// DedupWindow is how long after its action finished an identical call
	// is still answered from it (DefaultDedupWindow).
	DedupWindow time.Duration
	// MaxBody bounds a request body, uploads included (DefaultMaxBody).
	MaxBody int64
	// RoleMethods lists forwarded methods that need a role of the token
	// (DefaultRoleMethods when nil).
	RoleMethods map[string]string
}

// Defaults.
const (
	DefaultWait        = 10 * time.Second
	DefaultDedupWindow = 10 * time.Minute
	DefaultMaxBody     = 10 << 20
	// PurposeHeader overrides the token's default purpose for one call.
	PurposeHeader = "X-Herald-Purpose"
	// retryAfterPending is retry_after when the wait bound passed: the
	// action is queued; the retry is answered from it.
	retryAfterPending = 1
	// retryAfterUnavailable is retry_after when Herald's infrastructure
	// (database, policy engine) failed: nothing was decided.
	retryAfterUnavailable = 5
)

// DefaultRoleMethods: methods with effects on people beyond a message are
// forwarded only for tokens of an admin.
var DefaultRoleMethods = map[string]string{
	"leaveChat": herald.RoleAdmin, "banChatMember": herald.RoleAdmin, "unbanChatMember": herald.RoleAdmin,
	"restrictChatMember": herald.RoleAdmin, "promoteChatMember": herald.RoleAdmin, "banChatSenderChat": herald.RoleAdmin,
	"setChatPermissions": herald.RoleAdmin, "deleteChatPhoto": herald.RoleAdmin, "revokeChatInviteLink": herald.RoleAdmin,
}

// Handler serves /bot<facade-token>/<method>.
type Handler struct {
	Store    Store
	Pipeline Submitter
	// Tokens reads the account's real bot token for forwarded calls.
	Tokens botapi.TokenSource
	// BaseURL of the real Bot API ("" = botapi.DefaultBaseURL).
	BaseURL string
	// HTTP forwards calls (nil = a client with a 60 s timeout).
	HTTP   *http.Client
	Config Config
	Log    *slog.Logger
	// Calls counts calls by method (known methods only) and outcome; nil
	// disables it. Create it with NewMetrics.
	Calls *prometheus.CounterVec
	// Inbound serves setWebhook, deleteWebhook, getWebhookInfo and
	// getUpdates from Herald's queue of processed updates; nil refuses them.
	Inbound *Inbound
	// Waiters, when the delivery worker runs in this process and calls
	// Waiters.Done (delivery.Config.Done), wakes a governed call the moment
	// its delivery is recorded instead of polling for it.
	Waiters *Waiters
}

// NewMetrics registers the facade's call counter on reg.
func NewMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_facade_calls_total",
		Help: "Bot API facade calls by method and outcome (delivered, denied, deferred, pending, failed, forwarded, inbound, refused, error)."},
		[]string{"method", "outcome"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Mount serves the facade at /bot… and everything else with api.
func Mount(api http.Handler, f *Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/bot") {
			f.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// answer is a Bot API answer.
type answer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result,omitempty"`
	ErrorCode   int             `json:"error_code,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  map[string]any  `json:"parameters,omitempty"`
}

func fail(code int, desc string, params map[string]any) answer {
	return answer{ErrorCode: code, Description: desc, Parameters: params}
}

func badRequest(why string) answer { return fail(http.StatusBadRequest, "Bad Request: "+why, nil) }

func tooMany(after int, extra map[string]any) answer {
	p := map[string]any{"retry_after": after}
	for k, v := range extra {
		p[k] = v
	}
	return fail(http.StatusTooManyRequests, "Too Many Requests: retry after "+strconv.Itoa(after), p)
}

// governed maps each governed Bot API method to its Herald action kind;
// "" marks a governed method Herald has no action kind for (refused).
var governed = map[string]string{
	"sendMessage": herald.KindSendMessage, "sendPhoto": herald.KindSendPhoto,
	"editMessageText": herald.KindEditMessage, "deleteMessage": herald.KindDeleteMessage,
	"pinChatMessage": herald.KindPinMessage, "unpinChatMessage": herald.KindUnpinMessage,
	"editMessageCaption": herald.KindEditCaption,
	"sendDocument":       "", "sendMediaGroup": "", "copyMessage": "", "copyMessages": "", "forwardMessage": "",
	"forwardMessages": "", "editMessageMedia": "",
	"unpinAllChatMessages": "", "sendVideo": "", "sendAudio": "", "sendVoice": "", "sendAnimation": "",
	"sendSticker": "", "sendVideoNote": "", "sendLocation": "", "sendVenue": "", "sendContact": "",
	"sendPoll": "", "sendDice": "", "sendInvoice": "", "deleteMessages": "", "sendPaidMedia": "",
	"editMessageReplyMarkup": "", "editMessageLiveLocation": "", "stopPoll": "",
}

// inbound methods are about where updates go. With Handler.Inbound set,
// Herald answers them from its own queue of processed updates (inbound.go);
// forwarded to Telegram they would bypass opt-out processing, so they never
// are. logOut and close would log Herald's own bot out: always refused.
var inbound = map[string]bool{"setWebhook": true, "deleteWebhook": true, "getUpdates": true, "getWebhookInfo": true,
	"logOut": true, "close": true}

// known is the metric label of a method: bounded, never caller-chosen text.
func known(method string) string {
	if _, ok := governed[method]; ok {
		return method
	}
	if inbound[method] || DefaultRoleMethods[method] != "" {
		return method
	}
	switch method {
	case "getMe", "getChat", "getChatMember", "getFile", "answerCallbackQuery", "getWebhookInfo", "getChatAdministrators",
		"getChatMemberCount", "getMyCommands", "setMyCommands", "sendChatAction":
		return method
	}
	return "other"
}

var pathPattern = regexp.MustCompile(`^/bot([^/]+)/([A-Za-z][A-Za-z0-9]{0,63})$`)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, outcome := "other", "error"
	defer func() {
		if h.Calls != nil {
			h.Calls.WithLabelValues(method, outcome).Inc()
		}
	}()
	var a answer
	a, method, outcome = h.serve(r)
	write(w, a)
}

func write(w http.ResponseWriter, a answer) {
	status := http.StatusOK
	if !a.OK {
		status = a.ErrorCode
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(a)
}

func (h *Handler) serve(r *http.Request) (answer, string, string) {
	m := pathPattern.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return fail(http.StatusNotFound, "Not Found", nil), "other", "refused"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return fail(http.StatusNotFound, "Not Found", nil), "other", "refused"
	}
	ctx := r.Context()
	method := m[2]
	label := known(method)
	tok, err := h.Store.AuthenticateFacadeToken(ctx, m[1])
	if err != nil {
		if herald.ErrorCode(err) == herald.CodeUnauthenticated {
			return fail(http.StatusUnauthorized, "Unauthorized", nil), label, "refused"
		}
		h.log().Error("facade: authenticate", "err", err)
		return tooMany(retryAfterUnavailable, nil), label, "error"
	}
	if inbound[method] {
		if h.Inbound == nil || method == "logOut" || method == "close" {
			return fail(http.StatusForbidden, "Forbidden: herald.facade.inbound: "+method+
				" is not available through Herald; updates reach the bot through Herald's webhook (docs/facade.md)", nil), label, "refused"
		}
		params, perr := h.params(r)
		if perr != nil {
			return *perr, label, "refused"
		}
		a, outcome := h.inboundCall(ctx, tok, method, params)
		return a, label, outcome
	}
	kind, isGoverned := governed[method]
	if !isGoverned {
		if need := h.roleMethods()[method]; need != "" && tok.Role != need {
			return fail(http.StatusForbidden, "Forbidden: herald.facade.method_role: "+method+" needs a token of role "+need, nil), label, "refused"
		}
		return h.forward(r, tok, method), label, "forwarded"
	}
	if kind == "" {
		return badRequest(method + " is governed by Herald and has no Herald action kind yet; it was not sent"), label, "refused"
	}
	params, perr := h.params(r)
	if perr != nil {
		return *perr, label, "refused"
	}
	a, outcome := h.governed(ctx, r, tok, method, kind, params)
	return a, label, outcome
}

func (h *Handler) roleMethods() map[string]string {
	if h.Config.RoleMethods != nil {
		return h.Config.RoleMethods
	}
	return DefaultRoleMethods
}

func (h *Handler) maxBody() int64 {
	if h.Config.MaxBody > 0 {
		return h.Config.MaxBody
	}
	return DefaultMaxBody
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// params reads a governed call's parameters from the query string and a
// JSON, urlencoded or multipart body, as the Bot API accepts them. Values
// are kept as text (JSON scalars are formatted, objects and arrays kept as
// JSON), as Telegram reads them.
func (h *Handler) params(r *http.Request) (map[string]string, *answer) {
	p := map[string]string{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	tooLarge := fail(http.StatusRequestEntityTooLarge, "Request Entity Too Large", nil)
	body := http.MaxBytesReader(nil, r.Body, h.maxBody())
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var maxErr *http.MaxBytesError
	switch ct {
	case "", "application/json":
		raw, err := io.ReadAll(body)
		if errors.As(err, &maxErr) {
			return nil, &tooLarge
		}
		if err != nil {
			a := badRequest("can't read the request")
			return nil, &a
		}
		if len(strings.TrimSpace(string(raw))) == 0 {
			break
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			a := badRequest("can't parse JSON object")
			return nil, &a
		}
		for k, v := range obj {
			var s string
			if json.Unmarshal(v, &s) == nil {
				p[k] = s
				continue
			}
			p[k] = string(v)
		}
	case "application/x-www-form-urlencoded":
		raw, err := io.ReadAll(body)
		if errors.As(err, &maxErr) {
			return nil, &tooLarge
		}
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			a := badRequest("can't parse the form")
			return nil, &a
		}
		for k, v := range vals {
			p[k] = v[0]
		}
	case "multipart/form-data":
		mr := multipart.NewReader(body, ctParams["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.As(err, &maxErr) {
				return nil, &tooLarge
			}
			if err != nil {
				a := badRequest("can't parse the multipart body")
				return nil, &a
			}
			if part.FileName() != "" {
				// Herald's actions carry photos by URL or file_id; an
				// uploaded file has no action content to become.
				_, _ = io.Copy(io.Discard, part)
				a := badRequest("file uploads are not accepted through Herald; send a file_id or an HTTP URL")
				return nil, &a
			}
			v, err := io.ReadAll(io.LimitReader(part, 64<<10))
			if errors.As(err, &maxErr) {
				return nil, &tooLarge
			}
			if err != nil {
				a := badRequest("can't parse the multipart body")
				return nil, &a
			}
			p[part.FormName()] = string(v)
		}
	default:
		a := badRequest("unsupported Content-Type")
		return nil, &a
	}
	for k, v := range p {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			a := badRequest("strings must be encoded in UTF-8")
			return nil, &a
		}
	}
	return p, nil
}

// unsupported parameters change what is delivered in ways Herald's action
// content cannot carry: refused rather than silently dropped.
var unsupported = []string{"reply_markup", "entities", "caption_entities", "reply_parameters", "message_thread_id",
	"business_connection_id", "message_effect_id", "protect_content", "link_preview_options", "show_caption_above_media",
	"has_spoiler", "inline_message_id"}

// request turns a governed call into an action request.
func request(tok store.FacadeToken, kind string, p map[string]string, purpose string) (gateway.ActionRequest, *answer) {
	for _, k := range unsupported {
		if _, ok := p[k]; ok {
			a := badRequest("parameter " + k + " is not supported through Herald")
			return gateway.ActionRequest{}, &a
		}
	}
	chat := p["chat_id"]
	if chat == "" {
		a := badRequest("chat_id is empty")
		return gateway.ActionRequest{}, &a
	}
	req := gateway.ActionRequest{Kind: kind, Account: tok.Account, Target: chat, Purpose: purpose}
	req.ParseMode = p["parse_mode"]
	if v, ok := p["disable_notification"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			a := badRequest("disable_notification must be a Boolean")
			return gateway.ActionRequest{}, &a
		}
		req.DisableNotification = b
	}
	if v, ok := p["message_id"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			a := badRequest("invalid message_id specified")
			return gateway.ActionRequest{}, &a
		}
		req.MessageID = n
	}
	switch kind {
	case herald.KindSendMessage, herald.KindEditMessage:
		req.Text = p["text"]
		if req.Text == "" {
			a := badRequest("message text is empty")
			return gateway.ActionRequest{}, &a
		}
	case herald.KindSendPhoto:
		photo := p["photo"]
		if photo == "" {
			a := badRequest("there is no photo in the request")
			return gateway.ActionRequest{}, &a
		}
		if strings.HasPrefix(photo, "http://") || strings.HasPrefix(photo, "https://") {
			req.PhotoURL = photo
		} else {
			req.PhotoFileID = photo
		}
		req.Caption = p["caption"]
	case herald.KindEditCaption:
		req.Caption = p["caption"]
	}
	if kind != herald.KindSendMessage && kind != herald.KindSendPhoto && req.MessageID == 0 {
		a := badRequest("message identifier is not specified")
		return gateway.ActionRequest{}, &a
	}
	return req, nil
}

// callHash identifies a call: token, method, purpose and every parameter.
func callHash(tokenID, method, purpose string, p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, s := range []string{tokenID, method, purpose} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(k), k, len(p[k]), p[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (h *Handler) governed(ctx context.Context, r *http.Request, tok store.FacadeToken, method, kind string, p map[string]string) (answer, string) {
	purpose := tok.Purpose
	if v := r.Header.Get(PurposeHeader); v != "" {
		purpose = v
	}
	req, bad := request(tok, kind, p, purpose)
	if bad != nil {
		return *bad, "refused"
	}
	hash := callHash(tok.ID, method, purpose, p)
	// A retry of an earlier identical call is answered from its action.
	key := "fc:" + hash + ":0"
	priorID, _, err := h.Store.LatestFacadeCall(ctx, tok.ID, hash)
	switch {
	case err == nil:
		prior, err := h.Store.GetAction(ctx, tok.Org, priorID)
		if err != nil {
			return h.fault(err)
		}
		if !prior.Status.Terminal() || h.Store.Now().Sub(prior.UpdatedAt) < h.dedupWindow() {
			return h.await(ctx, tok, prior, method)
		}
		key = "fc:" + hash + ":" + prior.ID
	case !herald.IsNotFound(err):
		return h.fault(err)
	}
	res, err := h.Pipeline.Submit(ctx, tok.Caller(), req, gateway.SubmitOptions{IdempotencyKey: key})
	if err != nil {
		return h.submitError(err)
	}
	// The call's hash is recorded while the delivery is awaited (one
	// write off the critical path), and before the bot is answered, so its
	// retry always finds this action.
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		if err := h.Store.RecordFacadeCall(context.WithoutCancel(ctx), tok, hash, res.Action.ID); err != nil {
			// The action stands; only the retry shortcut is lost (the
			// idempotency key still finds it for the first generation).
			h.log().Warn("facade: record call", "action", res.Action.ID, "err", err)
		}
	}()
	defer func() { <-recorded }()
	return h.await(ctx, tok, res.Action, method)
}

func (h *Handler) dedupWindow() time.Duration {
	if h.Config.DedupWindow > 0 {
		return h.Config.DedupWindow
	}
	return DefaultDedupWindow
}

func (h *Handler) wait() time.Duration {
	if h.Config.Wait > 0 {
		return h.Config.Wait
	}
	return DefaultWait
}

// fault answers an infrastructure failure: retryable, nothing decided.
func (h *Handler) fault(err error) (answer, string) {
	h.log().Error("facade: infrastructure fault", "err", err)
	return tooMany(retryAfterUnavailable, nil), "error"
}

// submitError maps a pipeline refusal to the Bot API's error format.
func (h *Handler) submitError(err error) (answer, string) {
	var he *herald.Error
	if !errors.As(err, &he) {
		return h.fault(err)
	}
	switch he.Code {
	case herald.CodeValidation:
		msg := he.Message
		if len(he.Fields) > 0 {
			msg = he.Fields[0].Field + " " + he.Fields[0].Message
		}
		return badRequest(msg), "refused"
	case herald.CodeForbidden:
		return fail(http.StatusForbidden, "Forbidden: herald.access: "+he.Message, nil), "refused"
	case herald.CodeUnauthenticated:
		return fail(http.StatusUnauthorized, "Unauthorized", nil), "refused"
	case herald.CodeNotFound:
		return badRequest(he.Message), "refused"
	case herald.CodeAccountUnavailable:
		return fail(http.StatusForbidden, "Forbidden: herald.account: "+he.Message, nil), "refused"
	case herald.CodeUnavailable:
		return h.fault(err)
	}
	return badRequest(he.Message), "refused"
}

// settled answers from an action whose outcome the bot can be told now
// (finished, denied, held, or deferred by more than a second).
func (h *Handler) settled(tok store.FacadeToken, a herald.Action, method string) (answer, string, bool) {
	switch a.Status {
	case herald.StatusDelivered:
		return answer{OK: true, Result: result(a, method)}, "delivered", true
	case herald.StatusDenied:
		return denied(a), "denied", true
	case herald.StatusFailed:
		return telegramError(a), "failed", true
	case herald.StatusCancelled, herald.StatusExpired:
		return badRequest("herald.action_" + string(a.Status) + ": the action was " + string(a.Status) + " in Herald"), "refused", true
	case herald.StatusPendingApproval:
		return h.deferred(tok, a, time.Duration(0)), "pending", true
	case herald.StatusScheduled:
		if until := a.SendAt.Sub(h.Store.Now()); until > time.Second {
			return h.deferred(tok, a, until), "deferred", true
		}
	}
	return answer{}, "", false
}

// await answers from a (possibly in-flight) action: it waits, bounded, for
// a scheduled action that is due to finish, and maps its outcome. With
// Waiters, the worker's delivery-done notification wakes it at once and
// polling is only the fallback for a worker in another process; without,
// it polls with short intervals.
func (h *Handler) await(ctx context.Context, tok store.FacadeToken, a herald.Action, method string) (answer, string) {
	deadline := time.Now().Add(h.wait())
	poll, maxPoll := 500*time.Microsecond, 4*time.Millisecond
	if h.Waiters != nil {
		poll, maxPoll = 10*time.Millisecond, 100*time.Millisecond
	}
	pending := func() (answer, string) {
		// Queued or sending: the retry is answered from this action.
		return tooMany(retryAfterPending, map[string]any{"herald_action_id": a.ID}), "pending"
	}
	for {
		if ans, outcome, ok := h.settled(tok, a, method); ok {
			return ans, outcome
		}
		if !time.Now().Add(poll).Before(deadline) {
			return pending()
		}
		var sig <-chan struct{}
		release := func() {}
		if h.Waiters != nil {
			sig, release = h.Waiters.wait(a.ID)
			// Read after registering: an outcome committed before the
			// registration is seen here, one after it wakes the wait.
			next, err := h.Store.GetAction(ctx, tok.Org, a.ID)
			if err != nil {
				release()
				return h.fault(err)
			}
			if next.Status != a.Status || !next.UpdatedAt.Equal(a.UpdatedAt) {
				release()
				a = next
				continue
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			release()
			return pending()
		case <-sig:
		case <-t.C:
		}
		t.Stop()
		release()
		poll = min(poll*2, maxPoll)
		next, err := h.Store.GetAction(ctx, tok.Org, a.ID)
		if err != nil {
			return h.fault(err)
		}
		a = next
	}
}

// Waiters connects the delivery worker's delivery-done notification
// (delivery.Config.Done) to the facade calls waiting for those actions.
// The zero value is ready to use; it is safe for concurrent use.
type Waiters struct {
	mu sync.Mutex
	m  map[string]*waiter
}

type waiter struct {
	ch chan struct{}
	n  int
}

// Done wakes every call waiting for actionID. It never blocks.
func (ws *Waiters) Done(actionID string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w, ok := ws.m[actionID]; ok {
		close(w.ch)
		delete(ws.m, actionID)
	}
}

// wait returns a channel closed at the next Done(actionID), and a release
// to call when the caller stops waiting.
func (ws *Waiters) wait(actionID string) (<-chan struct{}, func()) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]*waiter{}
	}
	w, ok := ws.m[actionID]
	if !ok {
		w = &waiter{ch: make(chan struct{})}
		ws.m[actionID] = w
	}
	w.n++
	return w.ch, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		if w.n--; w.n == 0 && ws.m[actionID] == w {
			delete(ws.m, actionID)
		}
	}
}

// deferred answers a call whose action waits (policy deferral or approval)
// as the token's deferral mode says.
func (h *Handler) deferred(tok store.FacadeToken, a herald.Action, until time.Duration) answer {
	if tok.Deferral == store.FacadeDeferScheduled {
		chat := chatObject(a.Target)
		synthetic := map[string]any{"message_id": 0, "date": a.SendAt.Unix(), "chat": chat,
			"herald": map[string]any{"action_id": a.ID, "status": a.Status, "send_at": a.SendAt.UTC().Format(time.RFC3339)}}
		raw, _ := json.Marshal(synthetic)
		return answer{OK: true, Result: raw}
	}
	after := int(math.Ceil(until.Seconds()))
	if a.Status == herald.StatusPendingApproval {
		after = 60 // approval takes people; the retry polls once a minute
	}
	return tooMany(max(after, 1), map[string]any{"herald_action_id": a.ID, "herald_status": string(a.Status)})
}

// denied answers a policy denial: the first denying rule names the error,
// every denying rule is listed in parameters.herald_rules.
func denied(a herald.Action) answer {
	var d policies.Decision
	_ = json.Unmarshal(a.Decision, &d)
	var rules []string
	desc := "Forbidden: herald.denied: the action was denied by policy"
	for _, r := range d.Reasons {
		if r.Severity != "deny" {
			continue
		}
		if len(rules) == 0 {
			desc = "Forbidden: " + r.Rule + ": " + r.Message
		}
		rules = append(rules, r.Rule)
	}
	if a.ErrorCode == "denied_at_send" && len(rules) == 0 {
		desc = "Forbidden: herald.denied_at_send: the action was denied at send time"
	}
	return fail(http.StatusForbidden, desc, map[string]any{"herald_rules": rules, "herald_action_id": a.ID})
}

var telegramErr = regexp.MustCompile(`telegram \w+: (\d{3}) (.+)$`)

// telegramError passes Telegram's own refusal through with its code and text.
func telegramError(a herald.Action) answer {
	if m := telegramErr.FindStringSubmatch(a.ErrorMessage); m != nil {
		code, _ := strconv.Atoi(m[1])
		return fail(code, m[2], map[string]any{"herald_action_id": a.ID})
	}
	return badRequest("herald." + a.ErrorCode + ": delivery failed")
}

// result is Telegram's own result for the delivered action (from the
// connector's receipt); connectors without one get a minimal Message.
func result(a herald.Action, method string) json.RawMessage {
	var rc connectors.Receipt
	_ = json.Unmarshal(a.Receipt, &rc)
	if len(rc.Message) > 0 {
		return rc.Message
	}
	if method == "deleteMessage" || method == "pinChatMessage" || method == "unpinChatMessage" {
		return json.RawMessage("true")
	}
	m := map[string]any{"message_id": rc.MessageID, "date": rc.At.Unix(), "chat": chatObject(a.Target)}
	if a.Content.Text != "" && a.Kind != herald.KindSendPhoto {
		m["text"] = a.Content.Text
	}
	raw, _ := json.Marshal(m)
	return raw
}

func chatObject(target string) map[string]any {
	if n, err := strconv.ParseInt(target, 10, 64); err == nil {
		typ := "private"
		if n < 0 {
			typ = "supergroup"
		}
		return map[string]any{"id": n, "type": typ}
	}
	return map[string]any{"id": 0, "type": "channel", "username": strings.TrimPrefix(target, "@")}
}

// forward sends a non-governed call to Telegram with the account's real
// token and relays Telegram's answer verbatim.
func (h *Handler) forward(r *http.Request, tok store.FacadeToken, method string) answer {
	ctx := r.Context()
	acc, err := h.Store.GetAccount(ctx, tok.Org, tok.Account)
	if err != nil {
		a, _ := h.fault(err)
		return a
	}
	if acc.Connector != herald.ConnectorBotAPI || h.Tokens == nil {
		return badRequest("the account of this token is not a Bot API bot; only governed methods are available")
	}
	real, err := h.Tokens.BotToken(ctx, connectors.Account{ID: acc.ID, Org: acc.Org, Kind: string(acc.Kind),
		Connector: string(acc.Connector), SecretRef: acc.SecretRef})
	if err != nil {
		a, _ := h.fault(err)
		return a
	}
	base := h.BaseURL
	if base == "" {
		base = botapi.DefaultBaseURL
	}
	u := strings.TrimRight(base, "/") + "/bot" + real + "/" + method
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	body := http.MaxBytesReader(nil, r.Body, h.maxBody())
	out, err := http.NewRequestWithContext(ctx, r.Method, u, body)
	if err != nil {
		return badRequest("can't forward the request")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		out.Header.Set("Content-Type", ct)
	}
	out.ContentLength = r.ContentLength
	hc := h.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(out)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return fail(http.StatusRequestEntityTooLarge, "Request Entity Too Large", nil)
		}
		// The token is in the URL of a *url.Error: never log it.
		h.log().Warn("facade: forward failed", "method", known(method))
		return fail(http.StatusBadGateway, "Bad Gateway", nil)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&a); err != nil {
		return fail(http.StatusBadGateway, "Bad Gateway", nil)
	}
	if !a.OK && a.ErrorCode == 0 {
		a.ErrorCode = resp.StatusCode
	}
	return a
}
