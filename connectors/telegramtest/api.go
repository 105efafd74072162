package telegramtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// envelope is Telegram's answer shape.
type envelope struct {
	OK          bool        `json:"ok"`
	Result      any         `json:"result,omitempty"`
	ErrorCode   int         `json:"error_code,omitempty"`
	Description string      `json:"description,omitempty"`
	Parameters  *parameters `json:"parameters,omitempty"`
}

type parameters struct {
	MigrateToChatID int64 `json:"migrate_to_chat_id,omitempty"`
	RetryAfter      int   `json:"retry_after,omitempty"`
}

type apiError struct {
	code   int
	desc   string
	params *parameters
}

func badRequest(desc string) *apiError { return &apiError{code: 400, desc: "Bad Request: " + desc} }
func forbidden(desc string) *apiError  { return &apiError{code: 403, desc: "Forbidden: " + desc} }

func tooManyRequests(wait time.Duration) *apiError {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	return &apiError{code: 429, desc: fmt.Sprintf("Too Many Requests: retry after %d", secs), params: &parameters{RetryAfter: secs}}
}

// call is one parsed request.
type call struct {
	bot, method string
	chat        string
	text        string
	parseMode   string
	photo       string
	messageID   int64
	silent      bool
}

// counted methods spend flood-control budget; Telegram limits messages and
// edits, the fake does not limit deletes and pins.
func (c *call) counted() bool {
	return c.method == "sendMessage" || c.method == "sendPhoto" || c.method == "editMessageText" || c.method == "editMessageCaption"
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		writeJSON(w, 404, envelope{ErrorCode: 404, Description: "Not Found"})
		return
	}
	token, method := rest[:i], rest[i+1:]

	s.mu.Lock()
	bot, valid := s.botFor(token)
	if !valid {
		s.stats.Unauthorized++
	}
	fault := s.fault()
	s.mu.Unlock()
	if !valid {
		writeJSON(w, 401, envelope{ErrorCode: 401, Description: "Unauthorized"})
		return
	}
	switch fault {
	case faultServerError:
		writeJSON(w, 500, envelope{ErrorCode: 500, Description: "Internal Server Error"})
		return
	case faultDropBefore:
		drop(w)
		return
	}

	c, aerr := parse(r, bot, method)
	var result any
	if aerr == nil {
		result, aerr = s.execute(c, time.Now())
	}
	if aerr != nil {
		writeJSON(w, aerr.code, envelope{ErrorCode: aerr.code, Description: aerr.desc, Parameters: aerr.params})
		return
	}
	if d := s.opts.ResponseDelay; d > 0 {
		// Executed and recorded, answer held back: the window in which a
		// killed client leaves its outcome unknown.
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if fault == faultDropAfter {
		s.mu.Lock()
		s.stats.DroppedAfter++
		s.mu.Unlock()
		drop(w)
		return
	}
	writeJSON(w, 200, envelope{OK: true, Result: result})
}

type faultKind int

const (
	faultNone faultKind = iota
	faultServerError
	faultDropBefore
	faultDropAfter
)

// fault draws the injected fault for one request. s.mu must be held.
func (s *Server) fault() faultKind {
	o := s.opts
	if o.ServerErrorRate+o.DropBeforeRate+o.DropAfterRate == 0 {
		return faultNone
	}
	x := s.rng.Float64()
	switch {
	case x < o.ServerErrorRate:
		s.stats.ServerErrors++
		return faultServerError
	case x < o.ServerErrorRate+o.DropBeforeRate:
		s.stats.DroppedBefore++
		return faultDropBefore
	case x < o.ServerErrorRate+o.DropBeforeRate+o.DropAfterRate:
		// Counted when it happens; the call may still fail validation.
		return faultDropAfter
	}
	return faultNone
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, v envelope) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// parse reads a call from JSON, form or query parameters, as Telegram
// accepts all three.
func parse(r *http.Request, bot, method string) (*call, *apiError) {
	p := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return nil, badRequest("can't parse JSON object")
		}
		for k, v := range raw {
			var s string
			if json.Unmarshal(v, &s) == nil {
				p[k] = s
			} else {
				p[k] = string(v)
			}
		}
	} else {
		if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
			return nil, badRequest("can't parse request")
		}
		for k, v := range r.Form {
			p[k] = v[0]
		}
	}
	c := &call{bot: bot, method: method, chat: p["chat_id"], parseMode: p["parse_mode"], silent: p["disable_notification"] == "true"}
	if method == "getMe" {
		return c, nil
	}
	if c.chat == "" {
		return nil, badRequest("chat_id is empty")
	}
	switch c.parseMode {
	case "", "MarkdownV2", "HTML", "Markdown":
	default:
		return nil, badRequest("unsupported parse_mode")
	}
	if id, ok := p["message_id"]; ok {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, badRequest("invalid message_id specified")
		}
		c.messageID = n
	}
	switch method {
	case "sendMessage", "editMessageText":
		c.text = p["text"]
		if c.text == "" {
			return nil, badRequest("message text is empty")
		}
		if utf8.RuneCountInString(c.text) > MaxTextLength {
			return nil, badRequest("message is too long")
		}
	case "sendPhoto":
		c.photo, c.text = p["photo"], p["caption"]
		if c.photo == "" {
			return nil, badRequest("there is no photo in the request")
		}
		if strings.Contains(c.photo, "invalid") {
			return nil, badRequest("wrong file identifier/HTTP URL specified")
		}
		if utf8.RuneCountInString(c.text) > MaxCaptionLength {
			return nil, badRequest("message caption is too long")
		}
	case "editMessageCaption":
		c.text = p["caption"]
		if utf8.RuneCountInString(c.text) > MaxCaptionLength {
			return nil, badRequest("message caption is too long")
		}
	case "deleteMessage", "pinChatMessage", "unpinChatMessage":
	default:
		return nil, &apiError{code: 404, desc: "Not Found"}
	}
	if method != "sendMessage" && method != "sendPhoto" && c.messageID == 0 {
		return nil, badRequest("message identifier is not specified")
	}
	return c, nil
}

// execute applies a valid call: script, flood control, effect, record.
func (s *Server) execute(c *call, now time.Time) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.method == "getMe" {
		id, _ := strconv.ParseInt(c.bot, 10, 64)
		return map[string]any{"id": id, "is_bot": true, "first_name": "Fake", "username": "fake_" + c.bot + "_bot"}, nil
	}
	if err := s.scripted(c, now); err != nil {
		if err.code == 429 {
			s.stats.TooManyRequests++
		} else {
			s.stats.OtherErrors++
		}
		return nil, err
	}
	if c.counted() && !s.opts.NoLimits {
		if err := s.spend(c, now); err != nil {
			s.stats.TooManyRequests++
			return nil, err
		}
	}
	result, err := s.apply(c, now)
	if err != nil {
		s.stats.OtherErrors++
		return nil, err
	}
	s.stats.Accepted++
	if b, ok := s.scripts[c.chat]; ok && b.kind == slowMode && c.counted() {
		s.slow[c.chat] = now
	}
	s.records = append(s.records, Message{
		Bot: c.bot, Chat: c.chat, Method: c.method, Text: c.text, ParseMode: c.parseMode,
		Photo: c.photo, MessageID: c.messageID, DisableNotification: c.silent, At: now,
	})
	return result, nil
}

func (s *Server) scripted(c *call, now time.Time) *apiError {
	b, ok := s.scripts[c.chat]
	if !ok {
		return nil
	}
	switch b.kind {
	case blocked:
		return forbidden("bot was blocked by the user")
	case deactivated:
		return forbidden("user is deactivated")
	case notFound:
		return badRequest("chat not found")
	case kicked:
		return forbidden("bot was kicked from the group chat")
	case cantInitiate:
		return forbidden("bot can't initiate conversation with a user")
	case migrated:
		return &apiError{code: 400, desc: "Bad Request: group chat was upgraded to a supergroup chat", params: &parameters{MigrateToChatID: b.migrateTo}}
	case slowMode:
		if !c.counted() {
			return nil
		}
		if last, ok := s.slow[c.chat]; ok && now.Sub(last) < b.slowMode {
			return tooManyRequests(b.slowMode - now.Sub(last))
		}
	}
	return nil
}

// spend takes one token from every bucket that applies, or none and a 429
// with the longest wait. s.mu must be held.
func (s *Server) spend(c *call, now time.Time) *apiError {
	o := s.opts
	bs := []*rate.Limiter{
		s.bucket("bot:"+c.bot, o.BotPerSecond, o.BotBurst),
		s.bucket("chat:"+c.bot+":"+c.chat, o.ChatPerSecond, o.ChatBurst),
	}
	if isGroup(c.chat) {
		bs = append(bs, s.bucket("group:"+c.bot+":"+c.chat, o.GroupPerMinute/60, o.GroupBurst))
	}
	var wait time.Duration
	for _, b := range bs {
		if t := b.TokensAt(now); t < 1 {
			wait = max(wait, time.Duration((1-t)/float64(b.Limit())*float64(time.Second)))
		}
	}
	if wait > 0 {
		return tooManyRequests(wait)
	}
	for _, b := range bs {
		b.AllowN(now, 1)
	}
	return nil
}

func (s *Server) bucket(key string, perSecond float64, burst int) *rate.Limiter {
	b := s.buckets[key]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(perSecond), burst)
		s.buckets[key] = b
	}
	return b
}

// apply performs the call's effect and returns Telegram's result. s.mu
// must be held.
func (s *Server) apply(c *call, now time.Time) (any, *apiError) {
	msgs := s.live[c.chat]
	if msgs == nil {
		msgs = make(map[int64]*liveMessage)
		s.live[c.chat] = msgs
	}
	switch c.method {
	case "sendMessage", "sendPhoto":
		s.nextID[c.chat]++
		c.messageID = s.nextID[c.chat]
		msgs[c.messageID] = &liveMessage{text: c.text, media: c.method == "sendPhoto"}
		return s.message(c, now), nil
	case "editMessageCaption":
		m := msgs[c.messageID]
		if m == nil || m.deleted {
			return nil, badRequest("message to edit not found")
		}
		if !m.media {
			return nil, badRequest("there is no caption in the message to edit")
		}
		if m.text == c.text {
			return nil, badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
		}
		m.text = c.text
		return s.message(c, now), nil
	case "editMessageText":
		m := msgs[c.messageID]
		if m == nil || m.deleted {
			return nil, badRequest("message to edit not found")
		}
		if m.text == c.text {
			return nil, badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
		}
		m.text = c.text
		return s.message(c, now), nil
	case "deleteMessage":
		m := msgs[c.messageID]
		if m == nil || m.deleted {
			return nil, badRequest("message to delete not found")
		}
		m.deleted = true
		return true, nil
	case "pinChatMessage":
		m := msgs[c.messageID]
		if m == nil || m.deleted {
			return nil, badRequest("message to pin not found")
		}
		m.pinned = true
		return true, nil
	case "unpinChatMessage":
		m := msgs[c.messageID]
		if m == nil || m.deleted {
			return nil, badRequest("message to unpin not found")
		}
		m.pinned = false
		return true, nil
	}
	return nil, &apiError{code: 404, desc: "Not Found"}
}

func (s *Server) message(c *call, now time.Time) map[string]any {
	m := map[string]any{
		"message_id": c.messageID,
		"date":       now.Unix(),
		"chat":       map[string]any{"id": chatNumber(c.chat), "type": chatType(c.chat)},
	}
	if c.method == "sendPhoto" || c.method == "editMessageCaption" {
		m["photo"] = []map[string]any{{"file_id": "fake-file-" + strconv.FormatInt(c.messageID, 10), "width": 1, "height": 1}}
		if c.text != "" {
			m["caption"] = c.text
		}
	} else {
		m["text"] = c.text
	}
	return m
}
