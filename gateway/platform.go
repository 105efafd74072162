package gateway

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// Organisations, people and keys as API (issue 12):
//
//   - /v1/orgs is the platform scope: only a platform operator (a principal
//     listed in platform_operators, the bootstrap key on first start) may
//     use it; everyone else gets 403 whatever the organisation id, so the
//     answer never reveals which organisations exist.
//   - /v1/people and /v1/keys act in the caller's organisation, authorized
//     by Casbin (people are role bindings: "roles"; keys: "keys").
//   - /v1/contacts (list) and /v1/contacts/{id}/consents are in contacts_list.go.
//
// Every change is a ledger entry written in the change's transaction by the
// store; a change to an organisation also goes to the platform's chain
// (store.PlatformLedger).

// platformRoutes registers the routes of this file and contacts_list.go.
func (s *Server) platformRoutes(g *gin.RouterGroup) {
	g.POST("/orgs", s.createOrg)
	g.GET("/orgs", s.listOrgs)
	g.PATCH("/orgs/:id", s.patchOrg)
	g.DELETE("/orgs/:id", s.deleteOrg)
	g.POST("/people", s.invitePerson)
	g.GET("/people", s.listPeople)
	g.DELETE("/people/:id", s.revokePerson)
	g.POST("/keys", s.createKey)
	g.GET("/keys", s.listKeys)
	g.DELETE("/keys/:id", s.revokeKey)
	s.contactListRoutes(g)
}

// pathID returns the route's id, answering 404 for one that no row can
// have (invalid UTF-8, NUL or control bytes), exactly as for a missing id,
// before it reaches the database (PostgreSQL refuses such text).
func pathID(c *gin.Context, what string) (string, bool) {
	id := c.Param("id")
	if !store.ValidText(id) || len(id) > 200 {
		writeProblem(c, herald.NotFound(what))
		return "", false
	}
	return id, true
}

// platformOperator answers 403 unless the caller is a platform operator.
func (s *Server) platformOperator(c *gin.Context) bool {
	p := principal(c)
	ok, err := s.Store.IsPlatformOperator(c.Request.Context(), p.Org, p.ID)
	if err != nil {
		writeProblem(c, err)
		return false
	}
	if !ok {
		writeProblem(c, herald.Errorf(herald.CodeForbidden, "only a platform operator may manage organisations"))
		return false
	}
	return true
}

// orgView is an organisation as the platform API shows it.
type orgView struct {
	herald.Org
	Status string `json:"status"`
}

func viewOrg(o herald.Org) orgView { return orgView{Org: o, Status: o.Status()} }

// orgRequest creates an organisation and, so that someone can act in it,
// its first admin: a person by Telegram id (who then logs in with
// Telegram), an API key (returned once), or both.
type orgRequest struct {
	Name            string `json:"name"`
	Timezone        string `json:"timezone,omitempty"`
	AdminTelegramID string `json:"admin_telegram_id,omitempty"`
	AdminKey        bool   `json:"admin_key,omitempty"`
}

func (s *Server) createOrg(c *gin.Context) {
	if !s.platformOperator(c) {
		return
	}
	var req orgRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	actor := principal(c).ID
	var (
		o      herald.Org
		person *store.Person
		key    *herald.APIKey
		token  string
	)
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		if o, err = tx.CreateOrgAs(ctx, req.Name, req.Timezone, actor); err != nil {
			return err
		}
		if req.AdminTelegramID != "" {
			p, err := tx.InvitePerson(ctx, o.ID, req.AdminTelegramID, "", []store.RoleGrant{{Role: herald.RoleAdmin}}, actor)
			if e, ok := err.(*herald.Error); ok && e.Code == herald.CodeValidation {
				for i := range e.Fields {
					e.Fields[i].Field = "admin_telegram_id"
				}
			}
			if err != nil {
				return err
			}
			person = &p
		}
		if req.AdminKey {
			k, tok, err := tx.CreateAPIKey(ctx, o.ID, "admin-"+o.ID[len(o.ID)-8:], herald.RoleAdmin, "first admin", nil)
			if err != nil {
				return err
			}
			if _, err := tx.AppendLedger(ctx, o.ID, store.LedgerRecord{Kind: ledger.KindKeyCreated, Actor: actor,
				Refs: map[string]string{"key": k.ID}, Attrs: map[string]any{"role": k.Role, "principal": k.Principal}}); err != nil {
				return err
			}
			if _, err := tx.EnsureRole(ctx, o.ID, k.Principal, k.Role, actor); err != nil {
				return err
			}
			key, token = &k, tok
		}
		return nil
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	if person != nil || key != nil {
		if err := s.reloadAccess(ctx); err != nil {
			logger(c).Warn("org created; access reload failed, the watcher applies it", "err", err)
		}
	}
	body := gin.H{"org": viewOrg(o)}
	if person != nil {
		body["admin_person"] = person
	}
	if key != nil {
		body["admin_key"], body["admin_token"] = key, token
	}
	writeJSON(c, http.StatusCreated, body)
}

func (s *Server) listOrgs(c *gin.Context) {
	if !s.platformOperator(c) {
		return
	}
	orgs, err := s.Store.ListOrgs(c.Request.Context())
	if err != nil {
		writeProblem(c, err)
		return
	}
	out := make([]orgView, len(orgs))
	for i, o := range orgs {
		out[i] = viewOrg(o)
	}
	writeJSON(c, http.StatusOK, gin.H{"orgs": out})
}

// orgPatch renames, suspends or resumes an organisation.
type orgPatch struct {
	Name   *string `json:"name,omitempty"`
	Status *string `json:"status,omitempty"` // "active" or "suspended"
}

func (s *Server) patchOrg(c *gin.Context) {
	if !s.platformOperator(c) {
		return
	}
	var req orgPatch
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if req.Status != nil && *req.Status != "active" && *req.Status != "suspended" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "status", Message: `must be "active" or "suspended"`}))
		return
	}
	if req.Name == nil && req.Status == nil {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "name", Message: "send a name or a status to change"}))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id, ok := pathID(c, "organisation")
	if !ok {
		return
	}
	if req.Status != nil && *req.Status == "suspended" && id == p.Org {
		writeProblem(c, herald.Errorf(herald.CodeConflict, "a platform operator cannot suspend their own organisation"))
		return
	}
	var o herald.Org
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		if req.Name != nil {
			if o, err = tx.RenameOrg(ctx, id, *req.Name, p.ID); err != nil {
				return err
			}
		}
		if req.Status != nil {
			o, err = tx.SetOrgSuspended(ctx, id, *req.Status == "suspended", p.ID)
		}
		return err
	})
	respond(c, http.StatusOK, viewOrg(o), err)
}

// deleteOrg erases an organisation's personal data (store.Tx.DeleteOrg),
// then signs a final checkpoint of its ledger so the erasure's own entry is
// covered by a signature.
func (s *Server) deleteOrg(c *gin.Context) {
	if !s.platformOperator(c) {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id, ok := pathID(c, "organisation")
	if !ok {
		return
	}
	if id == p.Org {
		writeProblem(c, herald.Errorf(herald.CodeConflict, "a platform operator cannot delete their own organisation"))
		return
	}
	if s.Ledger == nil {
		writeProblem(c, herald.Errorf(herald.CodeUnavailable, "the ledger is not configured: deleting an organisation needs its final signed checkpoint"))
		return
	}
	var (
		o  herald.Org
		er store.OrgErasure
	)
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		o, er, err = tx.DeleteOrg(ctx, id, p.ID)
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.reloadAccess(ctx); err != nil {
		logger(c).Warn("org deleted; access reload failed, the watcher applies it", "err", err)
	}
	cp, _, err := s.Ledger.Logs.Checkpoint(ctx, id)
	if err != nil {
		writeProblem(c, &herald.Error{Code: herald.CodeUnavailable, Err: err,
			Message: "the organisation is deleted but its final checkpoint could not be signed; the checkpoint job signs it",
			Extra:   map[string]any{"org": viewOrg(o), "erased": er, "committed": true}})
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"org": viewOrg(o), "erased": er, "checkpoint": cp})
}

// People.

type personRequest struct {
	TelegramID string            `json:"telegram_id"`
	Name       string            `json:"name,omitempty"`
	Roles      []store.RoleGrant `json:"roles"`
}

func (s *Server) invitePerson(c *gin.Context) {
	if !s.authorize(c, access.ResRoles, access.VerbWrite) {
		return
	}
	var req personRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	var person store.Person
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		person, err = tx.InvitePerson(ctx, p.Org, req.TelegramID, req.Name, req.Roles, p.ID)
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.reloadAccess(ctx); err != nil {
		logger(c).Warn("person invited; access reload failed, the watcher applies it", "err", err)
	}
	writeJSON(c, http.StatusCreated, person)
}

func (s *Server) listPeople(c *gin.Context) {
	if !s.authorize(c, access.ResRoles, access.VerbRead) {
		return
	}
	all, err := boolQuery(c, "include_revoked")
	if err != nil {
		writeProblem(c, err)
		return
	}
	people, err := s.Store.ListPeople(c.Request.Context(), principal(c).Org, all)
	respond(c, http.StatusOK, gin.H{"people": people}, err)
}

// revokePerson revokes the invitation and every binding at once; the
// person's live sessions are refused on their next request on every replica
// (store.SessionAllowed is checked on each request).
func (s *Server) revokePerson(c *gin.Context) {
	if !s.authorize(c, access.ResRoles, access.VerbWrite) {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id, ok := pathID(c, "person")
	if !ok {
		return
	}
	var person store.Person
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		person, err = tx.RevokePerson(ctx, p.Org, id, p.ID)
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.reloadAccess(ctx); err != nil {
		logger(c).Warn("person revoked; access reload failed, the watcher applies it", "err", err)
	}
	writeJSON(c, http.StatusOK, gin.H{"revoked": person})
}

// Keys.

type keyRequest struct {
	// Principal the key authenticates as; default a new one ("key-…").
	Principal   string     `json:"principal,omitempty"`
	Role        string     `json:"role"`
	Scope       string     `json:"scope,omitempty"`
	Description string     `json:"description,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// maxKeyDescription bounds a key's description.
const maxKeyDescription = 200

func (s *Server) createKey(c *gin.Context) {
	if !s.authorize(c, access.ResKeys, access.VerbWrite) {
		return
	}
	var req keyRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	if req.Principal == "" {
		req.Principal = "key-" + strings.ReplaceAll(store.NewID(), "-", "")[20:]
	}
	var fe []herald.FieldError
	if strings.HasPrefix(req.Principal, store.PersonPrincipalPrefix) {
		fe = append(fe, herald.FieldError{Field: "principal", Message: `people ("tg:…") log in with Telegram; invite them with POST /v1/people`})
	}
	fe = append(fe, access.ValidateBinding(req.Principal, req.Role, access.NormalizeScope(req.Scope))...)
	if len(req.Description) > maxKeyDescription || !store.ValidText(req.Description) {
		fe = append(fe, herald.FieldError{Field: "description", Message: "must be at most 200 printable characters"})
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(s.Store.Now()) {
		fe = append(fe, herald.FieldError{Field: "expires_at", Message: "must be in the future"})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	var (
		key   herald.APIKey
		token string
	)
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		if key, token, err = tx.CreateAPIKey(ctx, p.Org, req.Principal, req.Role, req.Description, req.ExpiresAt); err != nil {
			return err
		}
		if _, err := tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindKeyCreated, Actor: p.ID,
			Refs: map[string]string{"key": key.ID}, Attrs: map[string]any{"role": key.Role, "principal": key.Principal,
				"scope": access.NormalizeScope(req.Scope)}}); err != nil {
			return err
		}
		if access.NormalizeScope(req.Scope) == access.ScopeAll {
			_, err = tx.EnsureRole(ctx, p.Org, req.Principal, req.Role, p.ID)
			return err
		}
		_, err = tx.GrantRole(ctx, p.Org, req.Principal, req.Role, req.Scope, p.ID)
		if herald.ErrorCode(err) == herald.CodeConflict {
			return nil // the principal holds this scoped role already
		}
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.reloadAccess(ctx); err != nil {
		logger(c).Warn("key created; access reload failed, the watcher applies it", "err", err)
	}
	writeJSON(c, http.StatusCreated, gin.H{"key": key, "scope": access.NormalizeScope(req.Scope), "token": token,
		"note": "the token is shown once and never again; store it now"})
}

func (s *Server) listKeys(c *gin.Context) {
	if !s.authorize(c, access.ResKeys, access.VerbRead) {
		return
	}
	keys, err := s.Store.ListAPIKeys(c.Request.Context(), principal(c).Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if keys == nil {
		keys = []herald.APIKey{}
	}
	writeJSON(c, http.StatusOK, gin.H{"keys": keys})
}

// revokeKey revokes a key by id or prefix. Revoking the key the request
// came with is allowed: it is the caller's way to retire it.
func (s *Server) revokeKey(c *gin.Context) {
	if !s.authorize(c, access.ResKeys, access.VerbWrite) {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id, ok := pathID(c, "api key")
	if !ok {
		return
	}
	var k herald.APIKey
	err := s.Store.InTx(ctx, func(tx *store.Tx) (err error) {
		before, err := tx.GetAPIKey(ctx, p.Org, id)
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			k = before
			return nil
		}
		if k, err = tx.RevokeAPIKey(ctx, p.Org, before.ID); err != nil {
			return err
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindKeyRevoked, Actor: p.ID,
			Refs: map[string]string{"key": k.ID}})
		return err
	})
	respond(c, http.StatusOK, gin.H{"revoked": k}, err)
}
