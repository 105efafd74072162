package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/secrets"
)

// Sessions lets people log in with their Telegram identity (the Telegram
// Login Widget) and get a short-lived JWT, so operators use the console as
// themselves rather than with a shared API key. A person's principal is
// "tg:<telegram user id>"; what they may do comes from its role bindings.
type Sessions struct {
	Secrets secrets.Store
	// LoginBotPath is the secret holding the login bot's token (key
	// "token"): the widget's data is signed with it.
	LoginBotPath string
	// TTL of an issued session; MaxAge of the widget's auth_date.
	TTL, MaxAge time.Duration
	Now         func() time.Time
}

// Session defaults: short sessions, and widget data no older than a day
// (Telegram's own recommendation for checking auth_date).
const (
	DefaultSessionTTL   = 15 * time.Minute
	DefaultLoginMaxAge  = 24 * time.Hour
	sessionKeyPath      = "herald/session-key"
	sessionIssuer       = "herald"
	telegramPrincipalPx = "tg:"
)

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sessions) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultSessionTTL
}

// key returns the HMAC key sessions are signed with, creating it in the
// secret store on first use.
func (s *Sessions) key(ctx context.Context) ([]byte, error) {
	sec, err := s.Secrets.Get(ctx, sessionKeyPath)
	if errors.Is(err, secrets.ErrNotFound) {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		_, perr := s.Secrets.Put(ctx, sessionKeyPath, map[string]string{"key": base64.StdEncoding.EncodeToString(b)}, secrets.MustNotExist)
		if perr != nil && !errors.Is(perr, secrets.ErrCASMismatch) {
			return nil, fmt.Errorf("create session key: %w", perr)
		}
		sec, err = s.Secrets.Get(ctx, sessionKeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read session key: %w", err)
	}
	return base64.StdEncoding.DecodeString(sec.Data["key"])
}

// VerifyLogin checks Telegram Login Widget data: the hash is
// HMAC-SHA-256 over the sorted "key=value" lines (without hash), keyed with
// SHA-256 of the login bot's token; auth_date must be recent.
func (s *Sessions) VerifyLogin(ctx context.Context, data map[string]string) (string, error) {
	bad := herald.Errorf(herald.CodeUnauthenticated, "the Telegram login data is invalid or stale")
	hash, id := data["hash"], data["id"]
	if hash == "" || id == "" {
		return "", bad
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return "", bad
	}
	authDate, err := strconv.ParseInt(data["auth_date"], 10, 64)
	maxAge := s.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultLoginMaxAge
	}
	if err != nil {
		return "", bad
	}
	age := s.now().Sub(time.Unix(authDate, 0))
	if age > maxAge || age < -time.Minute {
		return "", bad
	}
	sec, err := s.Secrets.Get(ctx, s.LoginBotPath)
	if err != nil || sec.Data["token"] == "" {
		return "", herald.Errorf(herald.CodeUnavailable, "Telegram login is not configured (no login bot token in the secret store)")
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		if k != "hash" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + data[k]
	}
	secret := sha256.Sum256([]byte(sec.Data["token"]))
	mac := hmac.New(sha256.New, secret[:])
	mac.Write([]byte(strings.Join(lines, "\n")))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(hash))) {
		return "", bad
	}
	return telegramPrincipalPx + id, nil
}

type sessionClaims struct {
	Org string `json:"org"`
	// Person is the invitation (store.Person id) the session was issued
	// for; empty for a principal known only by its role bindings.
	Person string `json:"pid,omitempty"`
	jwt.RegisteredClaims
}

// Issue signs a session for principal in org.
func (s *Sessions) Issue(ctx context.Context, org, principal string) (string, time.Time, error) {
	return s.IssueFor(ctx, org, principal, "")
}

// IssueFor signs a session for principal in org issued for the invitation
// person ("" for none): revoking that invitation ends the session.
func (s *Sessions) IssueFor(ctx context.Context, org, principal, person string) (string, time.Time, error) {
	key, err := s.key(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	exp := now.Add(s.ttl())
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, sessionClaims{Org: org, Person: person, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: sessionIssuer, Subject: principal, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		ID: hex.EncodeToString(jti)}})
	signed, err := tok.SignedString(key)
	return signed, exp, err
}

// Verify returns the principal of a valid, unexpired session. It checks
// the signature and expiry only: the gateway also asks the store whether
// the session is still allowed (SessionAllowed) on every request.
func (s *Sessions) Verify(ctx context.Context, token string) (herald.Principal, error) {
	p, _, err := s.verify(ctx, token)
	return p, err
}

// verify is Verify that also returns the session's invitation id.
func (s *Sessions) verify(ctx context.Context, token string) (herald.Principal, string, error) {
	key, err := s.key(ctx)
	if err != nil {
		return herald.Principal{}, "", err
	}
	var c sessionClaims
	_, err = jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(sessionIssuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
		// Strict base64: the last character of a signature carries spare
		// bits, and a lenient decoder accepts four spellings of one
		// signature. A token is valid in exactly one spelling.
		jwt.WithStrictDecoding())
	if err != nil || c.Subject == "" || c.Org == "" {
		return herald.Principal{}, "", herald.Errorf(herald.CodeUnauthenticated, "the session is invalid or expired; log in again")
	}
	return herald.Principal{ID: c.Subject, Org: c.Org}, c.Person, nil
}

// sessionPrincipal authenticates a session token: signature and expiry,
// then, in the database, that its organisation is not suspended and its
// invitation (or, for a session without one, a role binding) still stands.
// The database check is what makes a revocation hold on the next request
// on every replica, with no cache to wait out.
func (s *Server) sessionPrincipal(ctx context.Context, token string) (herald.Principal, error) {
	p, person, err := s.Sessions.verify(ctx, token)
	if err != nil {
		return p, err
	}
	if err := s.Store.SessionAllowed(ctx, p.Org, p.ID, person); err != nil {
		return herald.Principal{}, err
	}
	return p, nil
}

// telegramLogin answers POST /v1/auth/telegram?org=ORG with the widget's
// fields as a JSON object. The person must hold a role in the organisation
// (a binding for principal tg:<id>); otherwise the answer is the same as
// for bad data, so memberships cannot be probed.
func (s *Server) telegramLogin(c *gin.Context) {
	if s.Sessions == nil {
		writeProblem(c, herald.Errorf(herald.CodeUnavailable, "Telegram login is not configured"))
		return
	}
	var raw map[string]any
	if err := decodeJSON(c, &raw); err != nil {
		writeProblem(c, err)
		return
	}
	data := make(map[string]string, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			data[k] = x
		case float64:
			data[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case json.Number:
			data[k] = x.String()
		default:
			writeProblem(c, herald.Invalid(herald.FieldError{Field: k, Message: "must be a string or a number"}))
			return
		}
	}
	org := c.Query("org")
	if org == "" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "org", Message: "name the organisation to log in to"}))
		return
	}
	ctx := c.Request.Context()
	who, err := s.Sessions.VerifyLogin(ctx, data)
	if err != nil {
		writeProblem(c, err)
		return
	}
	p := herald.Principal{ID: who, Org: org}
	if !utf8.ValidString(org) || strings.ContainsRune(org, 0) {
		writeProblem(c, herald.Errorf(herald.CodeUnauthenticated, "the Telegram login data is invalid or stale"))
		return
	}
	// A person invited through /v1/people gets a session tied to the
	// invitation; a principal bound otherwise keeps working as before.
	person := ""
	if pr, err := s.Store.PersonByPrincipal(ctx, org, who); err == nil {
		person = pr.ID
	} else if !herald.IsNotFound(err) {
		writeProblem(c, err)
		return
	}
	if err := s.Store.SessionAllowed(ctx, org, who, person); err != nil {
		if code := herald.ErrorCode(err); code != herald.CodeUnauthenticated && code != herald.CodeNotFound {
			writeProblem(c, err) // the organisation is suspended, or the database failed
			return
		}
		// Not invited and no binding: the same answer as for bad data, so
		// memberships cannot be probed.
		writeProblem(c, herald.Errorf(herald.CodeUnauthenticated, "the Telegram login data is invalid or stale"))
		return
	}
	roles := s.principalRoles(p)
	if len(roles) == 0 && s.Pipeline != nil {
		if rc, ok := s.Pipeline.Authz.(interface {
			ReloadIfChanged(context.Context) (bool, error)
		}); ok {
			// Invited a moment ago through another replica: catch up (one
			// version read; a reload only if the bindings changed).
			if changed, err := rc.ReloadIfChanged(ctx); err == nil && changed {
				roles = s.principalRoles(p)
			}
		}
	}
	if len(roles) == 0 {
		writeProblem(c, herald.Errorf(herald.CodeUnauthenticated, "the Telegram login data is invalid or stale"))
		return
	}
	tok, exp, err := s.Sessions.IssueFor(ctx, org, who, person)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"token": tok, "token_type": "Bearer", "expires_at": exp.UTC(), "principal": who, "roles": roles})
}
