package botapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Client is a thin typed Bot API client. It is safe for concurrent use and
// holds no token: each call takes the token it should use.
type Client struct {
	baseURL string
	http    *http.Client
}

// DefaultTimeout bounds one call when no http.Client is given. Bot API calls
// answer in well under a second, but sendPhoto by URL makes Telegram fetch
// the photo first; a minute covers that without letting a hung connection
// hold a worker forever.
const DefaultTimeout = time.Minute

// NewClient returns a client for baseURL ("" means DefaultBaseURL). A nil
// hc means a client with DefaultTimeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), http: hc}
}

// response is Telegram's envelope.
type response struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Call invokes method with params encoded as JSON and decodes the result
// into result (which may be nil). It returns *APIError for Telegram's
// refusals and *TransportError when no answer arrived.
func (c *Client) Call(ctx context.Context, token, method string, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram %s: encode parameters: %w", method, err)
	}
	req, err := http.NewRequest(http.MethodPost, c.baseURL+"/bot"+token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, redact(err, token))
	}
	req.Header.Set("Content-Type", "application/json")

	// Whether the request was fully written decides between "not sent"
	// (safe to retry) and "may have been executed" (outcome unknown).
	var written atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			written.Store(true)
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))

	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{Method: method, Written: written.Load(), Err: redact(err, token)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		// Headers arrived: Telegram has answered, we lost the rest.
		return &TransportError{Method: method, Written: true, Err: fmt.Errorf("read answer: %w", redact(err, token))}
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		if resp.StatusCode != http.StatusOK {
			// A proxy or gateway answered (502 HTML page and the like).
			return &APIError{Method: method, Code: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
		}
		return &TransportError{Method: method, Written: true, Err: fmt.Errorf("decode answer (HTTP %d): %w", resp.StatusCode, err)}
	}
	if !r.OK {
		code := r.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return &APIError{
			Method: method, Code: code, Description: r.Description,
			RetryAfter:      time.Duration(r.Parameters.RetryAfter) * time.Second,
			MigrateToChatID: r.Parameters.MigrateToChatID,
		}
	}
	if result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			// Telegram acted; only our reading of the answer failed.
			return &TransportError{Method: method, Written: true, Err: fmt.Errorf("decode result: %w", err)}
		}
	}
	return nil
}

// redact removes the token from an error. *url.Error carries the request
// URL, which contains the token; it is rebuilt with the token replaced, and
// any other text is scrubbed as a second line of defence.
func redact(err error, token string) error {
	if err == nil || token == "" {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: strings.ReplaceAll(ue.URL, token, "<token>"), Err: redact(ue.Err, token)}
	}
	if strings.Contains(err.Error(), token) {
		return &redactedError{msg: strings.ReplaceAll(err.Error(), token, "<token>"), err: err}
	}
	return err
}

// redactedError keeps errors.Is working on the original (for
// context.DeadlineExceeded and the like) but prints without the token.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is lets errors.Is see through to sentinel errors without exposing the
// original through Unwrap (which errors.As could then print).
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
