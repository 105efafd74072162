package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

type accountRequest struct {
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	Connector     string `json:"connector"`
	Status        string `json:"status,omitempty"`
	PaidBroadcast bool   `json:"paid_broadcast,omitempty"`
}

type accountPatch struct {
	Name          *string `json:"name"`
	Status        *string `json:"status"`
	PaidBroadcast *bool   `json:"paid_broadcast"`
}

func (s *Server) listAccounts(c *gin.Context) {
	if !s.authorize(c, "accounts", "read") {
		return
	}
	list, err := s.Store.ListAccounts(c.Request.Context(), principal(c).Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"accounts": list})
}

func (s *Server) getAccount(c *gin.Context) {
	if !s.authorize(c, "accounts", "read") {
		return
	}
	a, err := s.Store.GetAccount(c.Request.Context(), principal(c).Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, a)
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
	var a herald.Account
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.CreateAccount(ctx, herald.Account{Org: p.Org, Name: req.Name, Kind: req.Kind, Connector: req.Connector,
			Status: req.Status, PaidBroadcast: req.PaidBroadcast})
		if err != nil {
			return err
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
	writeJSON(c, http.StatusCreated, a)
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
	var a herald.Account
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		patch := store.AccountPatch{Name: req.Name, Status: req.Status, PaidBroadcast: req.PaidBroadcast}
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
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, a)
}
