package gateway

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/campaigns/calendar"
	"github.com/heraldhq/herald/campaigns/fanout"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// CampaignSubmitter is the action pipeline as the campaign fan-out sees it:
// each recipient is an ordinary submit (same render, policy, ledger), with
// the idempotency key campaign id + contact id, addressed to the contact.
type CampaignSubmitter struct{ Pipeline *Pipeline }

// SubmitRecipient submits (or dry-runs) one recipient's action. A real
// submit is a batch of one: the same path as the fan-out's.
func (cs CampaignSubmitter) SubmitRecipient(ctx context.Context, p herald.Principal, s fanout.Submission, dryRun bool) (fanout.Outcome, error) {
	if !dryRun {
		rs, err := cs.SubmitRecipients(ctx, p, []fanout.Submission{s})
		if err != nil {
			return fanout.Outcome{}, err
		}
		if rs[0].Skipped != "" {
			return fanout.Outcome{}, herald.Errorf(herald.CodeConflict, "skipped: %s", rs[0].Skipped)
		}
		return rs[0].Outcome, rs[0].Err
	}
	at := s.ScheduleAt
	res, err := cs.Pipeline.Submit(ctx, p, recipientRequest(s, &at), SubmitOptions{IdempotencyKey: campaigns.IdempotencyKey(s.Campaign, s.Contact), DryRun: true,
		PriorAccountSends: s.PriorAccountSends})
	if err != nil {
		return fanout.Outcome{}, err
	}
	return fanout.Outcome{Action: res.Action, Decision: res.Decision}, nil
}

func recipientRequest(s fanout.Submission, at *time.Time) ActionRequest {
	return ActionRequest{Kind: s.Kind, Account: s.Account, Target: s.Target, Purpose: s.Purpose, Content: s.Content, ScheduleAt: at}
}

// SubmitRecipients submits recipients through Pipeline.SubmitBatch, each
// with the idempotency key campaign id + contact id; the campaign's id and
// approval are on each action's decision entry in the ledger.
func (cs CampaignSubmitter) SubmitRecipients(ctx context.Context, p herald.Principal, subs []fanout.Submission) ([]fanout.Result, error) {
	items := make([]BatchItem, len(subs))
	for i, s := range subs {
		at := s.ScheduleAt
		items[i] = BatchItem{Req: recipientRequest(s, &at), IdempotencyKey: campaigns.IdempotencyKey(s.Campaign, s.Contact),
			Attrs: map[string]any{"campaign": s.Campaign}, Approval: s.Approval, NotAfter: s.EndAt}
	}
	outs, err := cs.Pipeline.SubmitBatch(ctx, p, items)
	res := make([]fanout.Result, len(outs))
	for i, o := range outs {
		res[i] = fanout.Result{Done: o.Done, Outcome: fanout.Outcome{Action: o.Result.Action, Decision: o.Result.Decision}, Err: o.Err, Skipped: o.Skipped}
		if herald.ErrorCode(o.Err) == herald.CodeIdempotencyReuse {
			// The recipient was submitted before a crash with a message that
			// has since changed (their attributes were edited): the first
			// submission stands.
			prior, perr := cs.Pipeline.Store.ActionByIdempotencyKey(ctx, p.Org, items[i].IdempotencyKey)
			if perr == nil {
				res[i].Outcome, res[i].Err = fanout.Outcome{Action: prior}, nil
				_ = json.Unmarshal(prior.Decision, &res[i].Outcome.Decision)
			}
		}
	}
	return res, err
}

// Authorization of campaign routes maps onto the existing resource types:
// reading segments and campaigns needs contacts/actions read; writing them
// needs actions submit (the fan-out submits as the principal who scheduled
// the campaign, and every recipient's submit is authorized again against
// its account); labels are contact data (contacts write).
func (s *Server) campaignRoutes(v1 *gin.RouterGroup) {
	v1.GET("/segments", s.listSegments)
	v1.POST("/segments", s.createSegment)
	v1.GET("/segments/:id", s.getSegment)
	v1.PUT("/segments/:id", s.putSegment)
	v1.DELETE("/segments/:id", s.deleteSegment)
	v1.GET("/segments/:id/preview", s.previewSegment)
	v1.GET("/contacts/:id/labels", s.getLabels)
	v1.PATCH("/contacts/:id/labels", s.patchLabels)
	v1.GET("/campaigns", s.listCampaigns)
	v1.POST("/campaigns", s.createCampaign)
	v1.GET("/campaigns/:id", s.getCampaign)
	v1.PATCH("/campaigns/:id", s.patchCampaign)
	v1.POST("/campaigns/:id/dry-run", s.dryRunCampaign)
	v1.POST("/campaigns/:id/schedule", s.moveCampaign(campaigns.StatusScheduled))
	v1.POST("/campaigns/:id/pause", s.moveCampaign(campaigns.StatusPaused))
	v1.POST("/campaigns/:id/resume", s.moveCampaign(campaigns.StatusRunning))
	v1.POST("/campaigns/:id/cancel", s.moveCampaign(campaigns.StatusCancelled))
	v1.POST("/campaigns/:id/approve", s.voteCampaign("approve"))
	v1.POST("/campaigns/:id/reject", s.voteCampaign("reject"))
	v1.GET("/campaign-approvals", s.listCampaignApprovals)
	v1.GET("/campaigns/:id/results", s.campaignResults)
	v1.GET("/campaigns/:id/recipients", s.campaignRecipients)
	v1.GET("/calendar", s.calendar)
}

type segmentRequest struct {
	Name   string           `json:"name"`
	Filter campaigns.Filter `json:"filter"`
}

func (r segmentRequest) validate() error {
	fe := r.Filter.Validate()
	if !campaigns.ValidSegmentName(r.Name) {
		fe = append(fe, herald.FieldError{Field: "name", Message: "is required: 1–200 characters of text"})
	}
	if len(fe) > 0 {
		return herald.Invalid(fe...)
	}
	return nil
}

func (s *Server) listSegments(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") {
		return
	}
	out, err := s.Store.ListSegments(c.Request.Context(), principal(c).Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"segments": out})
}

func (s *Server) createSegment(c *gin.Context) {
	if !s.authorize(c, "actions", "submit") {
		return
	}
	var req segmentRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if err := req.validate(); err != nil {
		writeProblem(c, err)
		return
	}
	p := principal(c)
	seg, err := s.Store.CreateSegment(c.Request.Context(), campaigns.Segment{Org: p.Org, Name: req.Name, Filter: req.Filter, CreatedBy: p.ID})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, seg)
}

func (s *Server) getSegment(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") {
		return
	}
	seg, err := s.Store.GetSegment(c.Request.Context(), principal(c).Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, seg)
}

func (s *Server) putSegment(c *gin.Context) {
	if !s.authorize(c, "actions", "submit") {
		return
	}
	var req segmentRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if err := req.validate(); err != nil {
		writeProblem(c, err)
		return
	}
	seg, err := s.Store.UpdateSegment(c.Request.Context(), principal(c).Org, c.Param("id"), req.Name, req.Filter)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, seg)
}

func (s *Server) deleteSegment(c *gin.Context) {
	if !s.authorize(c, "actions", "submit") {
		return
	}
	if err := s.Store.DeleteSegment(c.Request.Context(), principal(c).Org, c.Param("id")); err != nil {
		writeProblem(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// maxPreviewSample bounds a preview's sample.
const maxPreviewSample = 100

func (s *Server) previewSegment(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	purpose := c.DefaultQuery("purpose", herald.PurposeMarketing)
	sample, err := intQuery(c, "sample", 10, 0, maxPreviewSample)
	var fe []herald.FieldError
	if err != nil {
		fe = append(fe, *err)
	}
	if !herald.ValidPurpose(purpose) {
		fe = append(fe, herald.FieldError{Field: "purpose", Message: "must be one of " + strings.Join(herald.Purposes, ", ")})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	seg, gerr := s.Store.GetSegment(ctx, p.Org, c.Param("id"))
	if gerr != nil {
		writeProblem(c, gerr)
		return
	}
	opts, gerr := s.previewOptions(ctx, p.Org, purpose)
	if gerr != nil {
		writeProblem(c, gerr)
		return
	}
	opts.Sample = sample
	pv, gerr := s.Store.PreviewSegment(ctx, p.Org, seg.Filter, opts)
	if gerr != nil {
		writeProblem(c, gerr)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"segment": seg.ID, "purpose": purpose, "preview": pv})
}

// paramGetter reads the policy parameters: the bundle defaults under the
// organisation's overrides.
func (s *Server) paramGetter(ctx context.Context, org string) (func(path ...string) any, error) {
	params, err := policies.DefaultParams()
	if err != nil {
		return nil, fmt.Errorf("policy defaults: %w", err)
	}
	over, err := s.Store.PolicyParams(ctx, org)
	if err != nil {
		return nil, err
	}
	return func(path ...string) any {
		for _, m := range []map[string]any{over, params} {
			var v any = m
			for _, k := range path {
				mm, _ := v.(map[string]any)
				v = mm[k]
			}
			if v != nil {
				return v
			}
		}
		return nil
	}, nil
}

// previewOptions reads the policy parameters a preview estimates with.
func (s *Server) previewOptions(ctx context.Context, org, purpose string) (store.PreviewOptions, error) {
	o := store.PreviewOptions{Purpose: purpose, Now: s.Store.Now()}
	get, err := s.paramGetter(ctx, org)
	if err != nil {
		return o, err
	}
	if n, ok := get("frequency", "recipient", purpose, "per_day").(float64); ok {
		o.DailyCap = int(n)
	}
	for _, key := range []string{"consent_purposes", "service_purposes"} {
		if list, ok := get("consent", key).([]any); ok {
			for _, v := range list {
				o.ConsentRequired = o.ConsentRequired || v == purpose
			}
		}
	}
	if m, ok := get("consent", "max_age_months").(float64); ok && m > 0 {
		o.ConsentMaxAge = time.Duration(m*30*24) * time.Hour
	}
	return o, nil
}

// calendar answers GET /v1/calendar?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC
// days, to exclusive, at most calendar.MaxDays).
func (s *Server) calendar(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	var fe []herald.FieldError
	day := func(name string) time.Time {
		t, err := time.Parse(time.DateOnly, c.Query(name))
		if err != nil {
			fe = append(fe, herald.FieldError{Field: name, Message: "is required: a date, YYYY-MM-DD"})
		}
		return t
	}
	from, to := day("from"), day("to")
	if len(fe) == 0 && (!to.After(from) || to.Sub(from) > calendar.MaxDays*24*time.Hour) {
		fe = append(fe, herald.FieldError{Field: "to", Message: fmt.Sprintf("must be 1–%d days after from", calendar.MaxDays)})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	get, err := s.paramGetter(ctx, p.Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	o := calendar.Options{DailyCap: map[string]int{}}
	for _, purpose := range herald.Purposes {
		if n, ok := get("frequency", "recipient", purpose, "per_day").(float64); ok {
			o.DailyCap[purpose] = int(n)
		}
	}
	if on, _ := get("quiet_hours", "enabled").(bool); on {
		o.QuietFrom, _ = get("quiet_hours", "start").(string)
		o.QuietTo, _ = get("quiet_hours", "end").(string)
		if list, ok := get("quiet_hours", "exempt_purposes").([]any); ok {
			for _, v := range list {
				if s, ok := v.(string); ok {
					o.QuietExempt = append(o.QuietExempt, s)
				}
			}
		}
	}
	days, err := calendar.Build(ctx, s.Store, p.Org, from, to, o)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"from": c.Query("from"), "to": c.Query("to"), "days": days})
}

func intQuery(c *gin.Context, name string, def, lo, hi int) (int, *herald.FieldError) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return def, &herald.FieldError{Field: name, Message: fmt.Sprintf("must be an integer from %d to %d", lo, hi)}
	}
	return n, nil
}

type labelsRequest struct {
	Tags       *[]string          `json:"tags"`
	AddTags    []string           `json:"add_tags"`
	RemoveTags []string           `json:"remove_tags"`
	Attributes map[string]*string `json:"attributes"`
}

func (s *Server) getLabels(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	if _, err := s.Store.GetContact(ctx, p.Org, c.Param("id")); err != nil {
		writeProblem(c, err)
		return
	}
	l, err := s.Store.ContactLabels(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, l)
}

// maxLabels bounds a contact's tags and attributes.
const maxLabels = 100

func (s *Server) patchLabels(c *gin.Context) {
	if !s.authorize(c, "contacts", "write") {
		return
	}
	var req labelsRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	var fe []herald.FieldError
	tags := func(field string, vs []string) {
		if len(vs) > maxLabels {
			fe = append(fe, herald.FieldError{Field: field, Message: fmt.Sprintf("at most %d tags", maxLabels)})
		}
		for i, v := range vs {
			if !campaigns.ValidTag(v) {
				fe = append(fe, herald.FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Message: "must be a tag (1–64 characters, no commas or control characters)"})
			}
		}
	}
	if req.Tags != nil {
		tags("tags", *req.Tags)
	}
	tags("add_tags", req.AddTags)
	tags("remove_tags", req.RemoveTags)
	if len(req.Attributes) > maxLabels {
		fe = append(fe, herald.FieldError{Field: "attributes", Message: fmt.Sprintf("at most %d attributes", maxLabels)})
	}
	for k, v := range req.Attributes {
		if !campaigns.ValidAttributeName(k) {
			fe = append(fe, herald.FieldError{Field: "attributes." + k, Message: "must be a lowercase name (a-z, 0-9, _)"})
		} else if v != nil && !campaigns.ValidAttributeValue(*v) {
			fe = append(fe, herald.FieldError{Field: "attributes." + k, Message: "must be at most 1024 characters of text"})
		}
	}
	patch := store.LabelsPatch{SetTags: req.Tags, AddTags: req.AddTags, RemoveTags: req.RemoveTags, Attributes: req.Attributes}
	if len(fe) == 0 && patch.Empty() {
		fe = append(fe, herald.FieldError{Field: "tags", Message: "the request changes nothing"})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id := c.Param("id")
	var l store.ContactLabels
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetContact(ctx, p.Org, id); err != nil {
			return err
		}
		if err := tx.PatchContactLabels(ctx, p.Org, id, patch); err != nil {
			return err
		}
		var err error
		if l, err = tx.ContactLabels(ctx, p.Org, id); err != nil {
			return err
		}
		// Tag names and attribute names are recorded; attribute values are
		// personal data and are not.
		names := make([]any, 0, len(req.Attributes))
		for k := range req.Attributes {
			names = append(names, k)
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: "contact.updated", Actor: p.ID,
			Refs: map[string]string{"contact": id}, Attrs: map[string]any{"tags": len(l.Tags), "attributes_changed": names}})
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, l)
}

type campaignRequest struct {
	Name string `json:"name"`
	campaigns.Spec
}

// validateCampaign checks a request and that what it names exists in the
// caller's organisation.
func (s *Server) validateCampaign(ctx context.Context, org string, req campaignRequest) error {
	fe := req.Spec.Validate(s.Store.Now())
	if !campaigns.ValidSegmentName(req.Name) {
		fe = append(fe, herald.FieldError{Field: "name", Message: "is required: 1–200 characters of text"})
	}
	if len(fe) > 0 {
		return herald.Invalid(fe...)
	}
	if req.Segment != "" {
		if _, err := s.Store.GetSegment(ctx, org, req.Segment); herald.IsNotFound(err) {
			fe = append(fe, herald.FieldError{Field: "segment", Message: "no such segment in this organisation"})
		} else if err != nil {
			return err
		}
	}
	for i, a := range req.Accounts {
		if _, err := s.Store.GetAccount(ctx, org, a); herald.IsNotFound(err) {
			fe = append(fe, herald.FieldError{Field: fmt.Sprintf("accounts[%d]", i), Message: "no such account in this organisation"})
		} else if err != nil {
			return err
		}
	}
	if len(req.Contacts) > 0 {
		ms, err := s.Store.ContactMembers(ctx, org, req.Contacts)
		if err != nil {
			return err
		}
		known := make(map[string]bool, len(ms))
		for _, m := range ms {
			known[m.ID] = true
		}
		for i, id := range req.Contacts {
			if !known[id] {
				fe = append(fe, herald.FieldError{Field: fmt.Sprintf("contacts[%d]", i), Message: "no such contact in this organisation"})
			}
		}
	}
	if len(fe) > 0 {
		return herald.Invalid(fe...)
	}
	return nil
}

func (s *Server) createCampaign(c *gin.Context) {
	if !s.authorize(c, "actions", "submit") {
		return
	}
	var req campaignRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	if err := s.validateCampaign(ctx, p.Org, req); err != nil {
		writeProblem(c, err)
		return
	}
	var out campaigns.Campaign
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.CreateCampaign(ctx, campaigns.Campaign{Org: p.Org, Name: req.Name, Spec: req.Spec, CreatedBy: p.ID})
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, out)
}

func (s *Server) patchCampaign(c *gin.Context) {
	if !s.authorize(c, "actions", "submit") {
		return
	}
	var req campaignRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	if _, err := s.Store.GetCampaign(ctx, p.Org, c.Param("id")); err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.validateCampaign(ctx, p.Org, req); err != nil {
		writeProblem(c, err)
		return
	}
	var out campaigns.Campaign
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		// An edit would change what the approvers decide on: a campaign
		// waiting for approval is rejected (or expires) first.
		if _, ap, err := tx.LockCampaignApproval(ctx, p.Org, c.Param("id")); err != nil {
			return err
		} else if ap != nil && ap.Status == store.ApprovalPending {
			return herald.Errorf(herald.CodeConflict, "the campaign is waiting for approval; it cannot change until that is decided")
		}
		var err error
		out, err = tx.UpdateCampaignSpec(ctx, p.Org, c.Param("id"), req.Name, req.Spec)
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, out)
}

func (s *Server) listCampaigns(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	st := campaigns.Status(c.Query("status"))
	if st != "" && !validCampaignStatus(st) {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "status", Message: "unknown campaign status"}))
		return
	}
	out, err := s.Store.ListCampaigns(c.Request.Context(), principal(c).Org, st, 100)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"campaigns": out})
}

func validCampaignStatus(st campaigns.Status) bool {
	for _, s := range campaigns.Statuses {
		if s == st {
			return true
		}
	}
	return false
}

func (s *Server) getCampaign(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	cp, err := s.Store.GetCampaign(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	res, err := s.Store.CampaignResults(ctx, p.Org, cp.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	ap, err := s.Store.CampaignApprovalOf(ctx, p.Org, cp.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"campaign": cp, "results": res, "approval": approvalOut(ap)})
}

// maxDryRunRecipients bounds how many recipients a dry run decides; a
// larger audience is predicted from the first ones in fan-out order.
const maxDryRunRecipients = 20_000

func (s *Server) dryRunCampaign(c *gin.Context) {
	if !s.authorize(c, "actions", "submit") {
		return
	}
	limit, ferr := intQuery(c, "limit", 5_000, 1, maxDryRunRecipients)
	samples, ferr2 := intQuery(c, "samples", 5, 0, 100)
	for _, f := range []*herald.FieldError{ferr, ferr2} {
		if f != nil {
			writeProblem(c, herald.Invalid(*f))
			return
		}
	}
	ctx := c.Request.Context()
	p := principal(c)
	cp, err := s.Store.GetCampaign(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	pr, err := fanout.Predict(ctx, s.Store, CampaignSubmitter{s.Pipeline}, p, cp, limit, samples)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"campaign": cp.ID, "dry_run": true, "prediction": pr})
}

// moveCampaign changes a campaign's status. Scheduling records who the
// fan-out submits as: the caller, who must be allowed to submit from every
// account of the campaign.
func (s *Server) moveCampaign(to campaigns.Status) gin.HandlerFunc {
	return func(c *gin.Context) {
		stopping := to == campaigns.StatusCancelled || to == campaigns.StatusPaused
		// Starting needs submit; stopping is cancelling the campaign's
		// pending sends, decided like cancelling an action: on
		// "actions/own" for the campaign's creator, on "actions" for
		// anyone else (operators stop only their own campaigns).
		if !stopping && !s.authorize(c, "actions", "submit") {
			return
		}
		ctx := c.Request.Context()
		p := principal(c)
		cur, err := s.Store.GetCampaign(ctx, p.Org, c.Param("id"))
		if err != nil {
			writeProblem(c, err)
			return
		}
		if stopping {
			resource := "actions"
			if cur.CreatedBy == p.ID {
				resource = access.ResActionsOwn
			}
			if !s.authorize(c, resource, access.VerbCancel) {
				return
			}
		}
		runAs := ""
		if to == campaigns.StatusScheduled {
			for _, a := range cur.Spec.Accounts {
				if err := s.Pipeline.Authz.Authorize(ctx, p, "accounts/"+a, "submit"); err != nil {
					writeProblem(c, err)
					return
				}
			}
			runAs = p.ID
			if cur.Status == campaigns.StatusDraft {
				ap, err := s.requestApprovalIfNeeded(ctx, p, cur)
				if err != nil {
					writeProblem(c, err)
					return
				}
				if ap != nil {
					logger(c).Info("campaign approval requested", "event", "campaign.approval_requested", "campaign", cur.ID)
					writeJSON(c, http.StatusAccepted, gin.H{"campaign": cur, "approval": approvalOut(ap)})
					return
				}
			}
		}
		if to == campaigns.StatusRunning && cur.Status == campaigns.StatusPaused && !cur.Materialized {
			to = campaigns.StatusScheduled // resumed before it ever started
		}
		var out campaigns.Campaign
		err = s.Store.InTx(ctx, func(tx *store.Tx) error {
			var err error
			out, err = tx.SetCampaignStatus(ctx, p.Org, cur.ID, to, p.ID, runAs)
			return err
		})
		if err != nil {
			writeProblem(c, err)
			return
		}
		logger(c).Info("campaign status changed", "event", "campaign."+string(to), "campaign", out.ID)
		writeJSON(c, http.StatusOK, out)
	}
}

func (s *Server) campaignResults(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	cp, err := s.Store.GetCampaign(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	res, err := s.Store.CampaignResults(ctx, p.Org, cp.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"campaign": cp.ID, "status": cp.Status, "results": res})
}

// campaignRecipients streams every recipient with its action's status, as
// JSON lines (default) or CSV (?format=csv). Contact ids only: no chat ids,
// no attributes.
func (s *Server) campaignRecipients(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	format := c.DefaultQuery("format", "jsonl")
	if format != "jsonl" && format != "csv" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "format", Message: "must be jsonl or csv"}))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	cp, err := s.Store.GetCampaign(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	var (
		write func(store.Recipient) error
		flush func()
	)
	if format == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		w := csv.NewWriter(c.Writer)
		_ = w.Write([]string{"seq", "contact", "account", "send_at", "status", "action", "action_status", "reason"})
		write = func(r store.Recipient) error {
			return w.Write([]string{strconv.FormatInt(r.Seq, 10), r.Contact, r.Account, r.SendAt.UTC().Format(time.RFC3339),
				r.Status, r.Action, r.ActionStatus, r.Reason})
		}
		flush = w.Flush
	} else {
		c.Header("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(c.Writer)
		write = func(r store.Recipient) error { return enc.Encode(r) }
		flush = func() {}
	}
	c.Status(http.StatusOK)
	if err := s.Store.CampaignRecipients(ctx, p.Org, cp.ID, write); err != nil {
		// Headers are gone: the truncated stream is the signal; log it.
		logger(c).Error("campaign recipients stream failed", "event", "campaign.stream_error", "err", err)
	}
	flush()
}
