package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
)

type accountRequest struct {
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	Connector     string `json:"connector"`
	Status        string `json:"status,omitempty"`
	PaidBroadcast bool   `json:"paid_broadcast,omitempty"`
	// Secret is written to the secret store and never returned or stored
	// in the database: {"token": …} for botapi; {"api_id", "api_hash",
	// "session"?, "bot_token"?} for mtproto.
	Secret map[string]string `json:"secret,omitempty"`
}

type accountPatch struct {
	Name          *string           `json:"name"`
	Status        *string           `json:"status"`
	PaidBroadcast *bool             `json:"paid_broadcast"`
	Secret        map[string]string `json:"secret"`
}

// accountView is an account as the API shows it: the secret's path,
// version and rotation time, never its value.
type accountView struct {
	herald.Account
	Secret *secretInfo `json:"secret,omitempty"`
}

type secretInfo struct {
	Path      string    `json:"path"`
	Version   int       `json:"version"`
	RotatedAt time.Time `json:"rotated_at"`
}

var (
	botTokenPattern = regexp.MustCompile(`^[0-9]{3,20}:[A-Za-z0-9_-]{30,80}$`)
	apiHashPattern  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	apiIDPattern    = regexp.MustCompile(`^[0-9]{1,12}$`)
)

// validateSecret checks a secret's shape for a connector, without ever
// echoing a value.
func validateSecret(connector string, sec map[string]string) []herald.FieldError {
	var fe []herald.FieldError
	add := func(f, m string) { fe = append(fe, herald.FieldError{Field: "secret." + f, Message: m}) }
	allowed := map[string]bool{}
	switch connector {
	case herald.ConnectorBotAPI:
		allowed["token"] = true
		if !botTokenPattern.MatchString(sec["token"]) {
			add("token", "must be a bot token from @BotFather (123456:ABC…)")
		}
	case herald.ConnectorMTProto:
		for _, k := range []string{"api_id", "api_hash", "session", "bot_token"} {
			allowed[k] = true
		}
		if !apiIDPattern.MatchString(sec["api_id"]) {
			add("api_id", "must be the numeric api_id from my.telegram.org")
		}
		if !apiHashPattern.MatchString(sec["api_hash"]) {
			add("api_hash", "must be the 32-character api_hash from my.telegram.org")
		}
	default:
		add("", "the sandbox connector takes no secret")
		return fe
	}
	for k := range sec {
		if !allowed[k] {
			add(k, "is not a field of a "+connector+" secret")
		}
	}
	return fe
}

// secretPath is where an account's secret lives in the secret store.
func secretPath(org, account string) string { return "herald/orgs/" + org + "/accounts/" + account }

func (s *Server) view(ctx context.Context, a herald.Account) accountView {
	v := accountView{Account: a}
	if a.SecretRef != "" && s.Secrets != nil {
		if sec, err := s.Secrets.Get(ctx, a.SecretRef); err == nil {
			v.Secret = &secretInfo{Path: a.SecretRef, Version: sec.Version, RotatedAt: sec.UpdatedAt}
		} else {
			v.Secret = &secretInfo{Path: a.SecretRef}
		}
	}
	return v
}

// putSecret writes a new version of an account's secret.
func (s *Server) putSecret(ctx context.Context, org, account string, data map[string]string) (secrets.Secret, error) {
	if s.Secrets == nil {
		return secrets.Secret{}, herald.Errorf(herald.CodeUnavailable, "no secret store is configured")
	}
	sec, err := s.Secrets.Put(ctx, secretPath(org, account), data, secrets.NoCAS)
	if err != nil {
		if errors.Is(err, secrets.ErrUnavailable) {
			return sec, &herald.Error{Code: herald.CodeUnavailable, Message: "the secret store is unavailable; nothing was changed", Err: err}
		}
		return sec, fmt.Errorf("write account secret: %w", err)
	}
	return sec, nil
}

func (s *Server) listAccounts(c *gin.Context) {
	if !s.authorize(c, "accounts", "read") {
		return
	}
	list, err := s.Store.ListAccounts(c.Request.Context(), principal(c).Org)
	respond(c, http.StatusOK, gin.H{"accounts": list}, err)
}

func (s *Server) getAccount(c *gin.Context) {
	if !s.authorize(c, "accounts", "read") {
		return
	}
	a, err := s.Store.GetAccount(c.Request.Context(), principal(c).Org, c.Param("id"))
	respond(c, http.StatusOK, s.view(c.Request.Context(), a), err)
}

func (s *Server) createAccount(c *gin.Context) {
	if !s.authorize(c, "accounts", "write") {
		return
	}
	var req accountRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	a := herald.Account{ID: store.NewID(), Org: p.Org, Name: req.Name, Kind: req.Kind, Connector: req.Connector,
		Status: req.Status, PaidBroadcast: req.PaidBroadcast}
	if a.Status == "" {
		a.Status = herald.AccountActive
	}
	fe := fieldErrors(store.ValidateAccount(a))
	if req.Secret != nil {
		fe = append(fe, validateSecret(req.Connector, req.Secret)...)
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	var version int
	if req.Secret != nil {
		// The secret goes to the store first, under the account's new id:
		// if the database insert then fails, an unreferenced secret is
		// left, never an account pointing at nothing.
		sec, err := s.putSecret(ctx, p.Org, a.ID, req.Secret)
		if err != nil {
			writeProblem(c, err)
			return
		}
		a.SecretRef, version = sec.Path, sec.Version
	}
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.CreateAccount(ctx, a)
		if err != nil {
			return err
		}
		if version > 0 {
			if _, err := tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindSecretRotated, Actor: p.ID,
				Refs: map[string]string{"account": a.ID}, Attrs: map[string]any{"secret": "account", "old_version": 0, "new_version": version}}); err != nil {
				return err
			}
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindAccountCreated, Actor: p.ID,
			Refs: map[string]string{"account": a.ID}, Attrs: map[string]any{"kind": a.Kind, "connector": a.Connector, "status": a.Status}})
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.Header("Location", "/v1/accounts/"+a.ID)
	writeJSON(c, http.StatusCreated, s.view(ctx, a))
}

func (s *Server) patchAccount(c *gin.Context) {
	if !s.authorize(c, "accounts", "write") {
		return
	}
	var req accountPatch
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	a, err := s.Store.GetAccount(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	var rotated *secrets.Secret
	if req.Secret != nil {
		if fe := validateSecret(a.Connector, req.Secret); len(fe) > 0 {
			writeProblem(c, herald.Invalid(fe...))
			return
		}
		// Validate the rest before writing a new secret version.
		probe := a
		if req.Status != nil {
			probe.Status = *req.Status
		}
		if req.Name != nil {
			probe.Name = *req.Name
		}
		if err := store.ValidateAccount(probe); err != nil {
			writeProblem(c, err)
			return
		}
		sec, err := s.putSecret(ctx, p.Org, a.ID, req.Secret)
		if err != nil {
			writeProblem(c, err)
			return
		}
		rotated = &sec
	}
	err = s.Store.InTx(ctx, func(tx *store.Tx) error {
		patch := store.AccountPatch{Name: req.Name, Status: req.Status, PaidBroadcast: req.PaidBroadcast}
		if rotated != nil {
			patch.SecretRef = &rotated.Path
			if _, err := tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindSecretRotated, Actor: p.ID,
				Refs:  map[string]string{"account": a.ID},
				Attrs: map[string]any{"secret": "account", "old_version": rotated.Version - 1, "new_version": rotated.Version}}); err != nil {
				return err
			}
		}
		if req.Status != nil && *req.Status == herald.AccountActive {
			patch.SetFrozenUntil = true // resuming clears a freeze
		}
		var err error
		if a, err = tx.UpdateAccount(ctx, p.Org, c.Param("id"), patch); err != nil {
			return err
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindAccountUpdated, Actor: p.ID,
			Refs: map[string]string{"account": a.ID}, Attrs: map[string]any{"status": a.Status, "paid_broadcast": a.PaidBroadcast}})
		return err
	})
	respond(c, http.StatusOK, s.view(ctx, a), err)
}

func fieldErrors(err error) []herald.FieldError {
	var he *herald.Error
	if errors.As(err, &he) {
		return he.Fields
	}
	return nil
}
