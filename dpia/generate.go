package dpia

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// Ledger kinds of the auditor's desk.
const (
	KindGenerated = "dpia.generated"
	KindApproved  = "dpia.approved"
	// KindDrillCompleted is a recovery drill's result (attrs rto_seconds,
	// rpo_seconds, ok); the DPIA reads the last one as evidence.
	KindDrillCompleted = "drill.completed"
)

// Targets the product promises (docs/operations.md): a drill that misses
// them is a failed control.
const (
	TargetRTO = 30 * time.Minute
	TargetRPO = time.Hour
)

// period is the activity window the report counts.
const period = 30 * 24 * time.Hour

// Source is what the generator reads from the store (*store.Store).
type Source interface {
	GetOrg(ctx context.Context, id string) (herald.Org, error)
	ConsentBasisCounts(ctx context.Context, org string) ([]store.BasisCount, error)
	ContactCounts(ctx context.Context, org string) (store.ContactCounts, error)
	StatusCounts(ctx context.Context, org, table string, from, to time.Time) (map[string]int, error)
	LastLedgerEntry(ctx context.Context, org, kind string) (*ledger.Entry, error)
	CountLedgerEntries(ctx context.Context, org, kind string, from, to time.Time) (int, error)
	SchemaTables(ctx context.Context) ([]string, error)
	ListBindings(ctx context.Context, org string) ([]access.Binding, error)
	ListAPIKeys(ctx context.Context, org string) ([]herald.APIKey, error)
	LatestLedgerCheckpoint(ctx context.Context, org string) (store.LedgerCheckpoint, error)
	DPIAPlan(ctx context.Context, org string) (json.RawMessage, error)
	SubjectStats(ctx context.Context, org string, from, to time.Time) (store.SubjectStats, error)
	ListIncidents(ctx context.Context, org string) ([]store.Incident, error)
	Now() time.Time
}

// LedgerVerifier verifies an organisation's stored ledger end to end
// (*store.LedgerLogs).
type LedgerVerifier interface {
	VerifyLedger(ctx context.Context, org string, o store.LedgerExportOptions, verifiers note.Verifiers) (ledger.Report, error)
}

// RetentionPolicy is an organisation's retention configuration as the DPIA
// reports it (GET/PUT /v1/retention; the retention job applies it).
type RetentionPolicy struct {
	Payloads  time.Duration
	Entries   time.Duration // 0: entries are kept (pruning off)
	Decisions time.Duration
	Receipts  time.Duration
	// DropContentAfterDelivery: content is deleted at the retention run
	// after delivery ("no message content stored").
	DropContentAfterDelivery bool
	// Profile is the retention profile in force ("" when set by hand).
	Profile string
	// MinimalFields: contacts hold no username, language or timezone.
	MinimalFields bool
}

// RetentionSource supplies an organisation's live retention configuration.
type RetentionSource interface {
	Retention(ctx context.Context, org string) (RetentionPolicy, error)
}

// RetentionReader reads the stored per-organisation configuration
// (*store.Store).
type RetentionReader interface {
	Retention(ctx context.Context, org string) (store.RetentionSetting, error)
}

// ConfiguredRetention reports what the retention job applies: the
// organisation's stored configuration, or the defaults it set none.
type ConfiguredRetention struct{ Store RetentionReader }

// Retention implements RetentionSource.
func (c ConfiguredRetention) Retention(ctx context.Context, org string) (RetentionPolicy, error) {
	cfg := store.DefaultRetention()
	var set store.RetentionSetting
	if c.Store != nil {
		var err error
		if set, err = c.Store.Retention(ctx, org); err != nil {
			return RetentionPolicy{}, err
		}
		cfg = set.RetentionConfig
	}
	day := 24 * time.Hour
	return RetentionPolicy{Payloads: time.Duration(cfg.PayloadsDays) * day, Entries: time.Duration(cfg.LedgerEntriesDays) * day,
		Decisions: time.Duration(cfg.DecisionInputsDays) * day, Receipts: time.Duration(cfg.ReceiptsDays) * day,
		DropContentAfterDelivery: cfg.DropContentAfterDelivery, Profile: set.Profile, MinimalFields: set.MinimalFields}, nil
}

// Deployment is what the composition root knows about the running system.
type Deployment struct {
	// SecretStore is "vault" or "local".
	SecretStore string
	// Pseudonymised is true when ledger refs to people are keyed hashes.
	Pseudonymised  bool
	OptOutKeywords []string
}

// Generator builds reports. Store is required; a nil Ledger (or no
// verifier keys) leaves the ledger unverified, which the report states as a
// failed control rather than hiding.
type Generator struct {
	Store      Source
	Ledger     LedgerVerifier
	Keys       func() []string
	Retention  RetentionSource
	Deployment Deployment
}

// Generate builds org's report now and seals it. It records nothing: see Record.
func (g *Generator) Generate(ctx context.Context, org string) (*Report, error) {
	o, err := g.Store.GetOrg(ctx, org)
	if err != nil {
		return nil, err
	}
	now := g.Store.Now().UTC()
	r := &Report{Schema: SchemaVersion, Org: OrgInfo{ID: o.ID, Name: o.Name, Timezone: o.Timezone},
		GeneratedAt: now, Period: Period{From: now.Add(-period), To: now}}
	ev, err := g.gather(ctx, org, now)
	if err != nil {
		return nil, err
	}
	r.Context = g.contextSection(ev)
	r.Principles = g.principles(ev)
	r.Risks = g.risks(ev, now)
	r.Incidents = incidentSummary(ev.incidents, now)
	if r.ActionPlan, err = g.actionPlan(ctx, org, r.Risks); err != nil {
		return nil, err
	}
	if r.Validation, err = g.validation(ctx, org); err != nil {
		return nil, err
	}
	if err := r.Seal(); err != nil {
		return nil, err
	}
	return r, nil
}

// evidence is everything measured for one report.
type evidence struct {
	org         string
	bases       []store.BasisCount
	contacts    store.ContactCounts
	actions     map[string]int
	accounts    map[string]int
	connectors  map[string]int
	tables      []string
	bindings    []access.Binding
	keys        []herald.APIKey
	retention   RetentionPolicy
	purged      *ledger.Entry
	pruned      *ledger.Entry
	erasures    int
	subjects    store.SubjectStats
	incidents   []store.Incident
	verify      *ledger.Report
	verifyErr   string
	verifiedAt  time.Time
	checkpoint  *store.LedgerCheckpoint
	drill       *ledger.Entry
	readersOf   map[string][]Reader
	staff       int
	lastUpdated time.Time
}

func (g *Generator) gather(ctx context.Context, org string, now time.Time) (*evidence, error) {
	ev := &evidence{org: org, readersOf: map[string][]Reader{}}
	var err error
	if ev.bases, err = g.Store.ConsentBasisCounts(ctx, org); err != nil {
		return nil, err
	}
	if ev.contacts, err = g.Store.ContactCounts(ctx, org); err != nil {
		return nil, err
	}
	if ev.actions, err = g.Store.StatusCounts(ctx, org, "actions", now.Add(-period), now.Add(time.Microsecond)); err != nil {
		return nil, err
	}
	if ev.accounts, err = g.Store.StatusCounts(ctx, org, "accounts", time.Time{}, time.Time{}); err != nil {
		return nil, err
	}
	if ev.connectors, err = g.Store.StatusCounts(ctx, org, "account_connectors", time.Time{}, time.Time{}); err != nil {
		return nil, err
	}
	if ev.tables, err = g.Store.SchemaTables(ctx); err != nil {
		return nil, err
	}
	if ev.bindings, err = g.Store.ListBindings(ctx, org); err != nil {
		return nil, err
	}
	if ev.keys, err = g.Store.ListAPIKeys(ctx, org); err != nil {
		return nil, err
	}
	rs := g.Retention
	if rs == nil {
		// The store is the retention job's own source; a Source without
		// it reports the defaults the job would apply.
		r, _ := g.Store.(RetentionReader)
		rs = ConfiguredRetention{Store: r}
	}
	if ev.retention, err = rs.Retention(ctx, org); err != nil {
		return nil, fmt.Errorf("dpia: retention of org %q: %w", org, err)
	}
	if ev.purged, err = g.Store.LastLedgerEntry(ctx, org, store.KindLedgerPayloadsPurged); err != nil {
		return nil, err
	}
	if ev.pruned, err = g.Store.LastLedgerEntry(ctx, org, store.KindLedgerPruned); err != nil {
		return nil, err
	}
	if ev.drill, err = g.Store.LastLedgerEntry(ctx, org, KindDrillCompleted); err != nil {
		return nil, err
	}
	if ev.erasures, err = g.Store.CountLedgerEntries(ctx, org, ledger.KindContactErased, now.Add(-period), now.Add(time.Microsecond)); err != nil {
		return nil, err
	}
	if ev.subjects, err = g.Store.SubjectStats(ctx, org, now.Add(-period), now.Add(time.Microsecond)); err != nil {
		return nil, err
	}
	if ev.incidents, err = g.Store.ListIncidents(ctx, org); err != nil {
		return nil, err
	}
	cp, err := g.Store.LatestLedgerCheckpoint(ctx, org)
	switch {
	case err == nil:
		ev.checkpoint = &cp
	case !herald.IsNotFound(err):
		return nil, err
	}
	g.verifyLedger(ctx, ev)
	if err := ev.readers(); err != nil {
		return nil, err
	}
	return ev, nil
}

// verifyLedger runs the same verification an auditor runs on an export.
// A failure is evidence, not an error: the report says so.
func (g *Generator) verifyLedger(ctx context.Context, ev *evidence) {
	var keys []string
	if g.Keys != nil {
		keys = g.Keys()
	}
	if g.Ledger == nil || len(keys) == 0 {
		ev.verifyErr = "no ledger verifier configured"
		return
	}
	vs, err := ledger.NewVerifiers(keys...)
	if err != nil {
		ev.verifyErr = "verifier keys: " + err.Error()
		return
	}
	rep, err := g.Ledger.VerifyLedger(ctx, ev.org, store.LedgerExportOptions{}, vs)
	if err != nil && !errors.Is(err, context.Canceled) {
		ev.verifyErr = err.Error()
	}
	ev.verify = &rep
	ev.verifiedAt = g.Store.Now().UTC()
}

// readers evaluates the live Casbin model with the organisation's bindings:
// for each resource a category names, which roles may read it and how many
// principals hold each.
func (ev *evidence) readers() error {
	ce, err := access.NewCasbin(ev.bindings)
	if err != nil {
		return err
	}
	staff := map[string]bool{}
	for _, k := range ev.keys {
		if k.RevokedAt == nil {
			staff[k.Principal] = true
		}
	}
	for _, b := range ev.bindings {
		staff[b.Principal] = true
	}
	ev.staff = len(staff)
	for _, c := range categories {
		if c.resource == "" || ev.readersOf[c.resource] != nil {
			continue
		}
		byRole := map[string]map[string]bool{}
		for _, b := range ev.bindings {
			ok, err := ce.Enforce("principal:"+b.Principal, ev.org, c.resource, access.VerbRead)
			if err != nil {
				return fmt.Errorf("dpia: evaluate access model: %w", err)
			}
			if !ok {
				continue
			}
			if byRole[b.RoleName()] == nil {
				byRole[b.RoleName()] = map[string]bool{}
			}
			byRole[b.RoleName()][b.Principal] = true
		}
		rs := []Reader{}
		for role, ps := range byRole {
			rs = append(rs, Reader{Role: role, Principals: len(ps)})
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Role < rs[j].Role })
		ev.readersOf[c.resource] = rs
	}
	return nil
}

func days(d time.Duration) string {
	if d <= 0 {
		return "kept"
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func (g *Generator) retentionOf(key string, ev *evidence) Retention {
	rp := ev.retention
	run := func(e *ledger.Entry, attr string) *RetentionRun {
		if e == nil {
			return nil
		}
		n, _ := e.Attrs[attr].(float64)
		if v, ok := e.Attrs[attr].(int64); ok {
			n = float64(v)
		}
		return &RetentionRun{At: e.Time.UTC(), Seq: e.Seq, Removed: int(n)}
	}
	switch key {
	case retPayloads:
		return Retention{Period: days(rp.Payloads), Rule: "ledger payloads purged after this period by the retention job (tombstones keep the chain verifiable)", LastRun: run(ev.purged, "payloads")}
	case retEntries:
		if rp.Entries <= 0 {
			return Retention{Period: "kept", Rule: "entries are kept; pruning behind a signed anchor is off"}
		}
		return Retention{Period: days(rp.Entries), Rule: "entries pruned behind a signed checkpoint after this period", LastRun: run(ev.pruned, "size")}
	case retDecisions:
		return Retention{Period: days(rp.Decisions), Rule: "decision inputs pruned after this period by the retention job"}
	case retContent:
		if rp.DropContentAfterDelivery {
			return Retention{Period: "until delivery", Rule: "content of delivered actions deleted at the retention run after delivery; only hashes and counts remain; scrubbed at once on erasure"}
		}
		return Retention{Period: days(rp.Payloads), Rule: "content of finished actions purged after this period by the retention job; scrubbed at once on erasure"}
	case retReceipts:
		return Retention{Period: days(rp.Receipts), Rule: "Telegram receipts (message id, chat id) of finished actions dropped after this period; the chat id is scrubbed at once on erasure"}
	case retContacts:
		return Retention{Period: "until erasure", Rule: "kept while the organisation holds a basis; DELETE /v1/contacts/{id} erases"}
	case retFacadeCalls:
		return Retention{Period: "1 day", Rule: "deleted hourly by the worker once older than a day; deleted at once on erasure"}
	case retLogs:
		return Retention{Period: "90 days", Rule: "guidance for the operator's log pipeline; logs hold no personal content"}
	default:
		return Retention{Period: "until revoked", Rule: "keys and bindings are kept for attribution; revoked keys stop working at once"}
	}
}

func (g *Generator) contextSection(ev *evidence) Context {
	c := Context{
		Purpose:    "Send, post and moderate the organisation's Telegram messages lawfully: every action is authorised, decided by policy (consent, quiet hours, caps, risk) and recorded in a tamper-evident ledger before delivery.",
		Controller: "the organisation; Herald's operator processes on its behalf",
	}
	declared := map[string]bool{}
	for _, t := range nonPersonal {
		declared[t] = true
	}
	for _, d := range categories {
		cat := Category{ID: d.id, Name: d.name, Storage: d.storage, Purpose: d.purpose, FlowsTo: d.flows,
			Retention: g.retentionOf(d.retention, ev), Pseudonymous: d.pseudonymous, ReadBy: []Reader{}, LegalBases: []LegalBasis{}}
		if cat.FlowsTo == nil {
			cat.FlowsTo = []string{}
		}
		for _, f := range d.fields {
			if d.id == "contacts" && ev.retention.MinimalFields && minimalFieldsDropped[f.Name] {
				continue // not stored under the minimal_fields profile
			}
			if f.Optional && d.id == "contacts" {
				var n int
				switch f.Name {
				case "timezone":
					n = ev.contacts.WithTimezone
				case "language":
					n = ev.contacts.WithLanguage
				case "username":
					n = ev.contacts.WithUsername
				default:
					cat.Fields = append(cat.Fields, f)
					continue
				}
				f.Filled = &n
			}
			cat.Fields = append(cat.Fields, f)
		}
		for _, t := range d.storage {
			declared[t] = true
		}
		for _, b := range d.bases {
			if b != basisCounted {
				cat.LegalBases = append(cat.LegalBases, LegalBasis{Basis: b, Records: -1})
				continue
			}
			for _, bc := range ev.bases {
				cat.LegalBases = append(cat.LegalBases, LegalBasis{Basis: bc.Basis, Purpose: bc.Purpose, Records: bc.Contacts})
			}
		}
		if d.resource != "" {
			cat.ReadBy = ev.readersOf[d.resource]
		}
		if d.subjects == "staff" {
			cat.Subjects = ev.staff
		} else {
			cat.Subjects = ev.contacts.Contacts
		}
		c.Categories = append(c.Categories, cat)
	}
	live := map[string]bool{}
	c.Schema = SchemaMap{Tables: len(ev.tables), Undeclared: []string{}, Missing: []string{}}
	for _, t := range ev.tables {
		live[t] = true
		if !declared[t] {
			c.Schema.Undeclared = append(c.Schema.Undeclared, t)
		}
	}
	for _, d := range categories {
		for _, t := range d.storage {
			if !strings.Contains(t, " ") && !live[t] {
				c.Schema.Missing = append(c.Schema.Missing, t)
			}
		}
	}
	for _, f := range flowsDeclared {
		f.Configured = true
		switch f.To {
		case flowTelegram:
			f.Configured = ev.connectors[herald.ConnectorBotAPI]+ev.connectors[herald.ConnectorMTProto] > 0
		case flowSecrets:
			f.Protection = g.secretStoreName() + "; never returned by the API"
		}
		c.Flows = append(c.Flows, f)
	}
	return c
}

func (g *Generator) secretStoreName() string {
	if g.Deployment.SecretStore == "vault" {
		return "Vault (KV v2, Transit signing)"
	}
	return "age-encrypted local file"
}

func (g *Generator) principles(ev *evidence) Principles {
	p := Principles{
		Minimisation: []string{
			"timezone, language and last inbound time are optional contact fields",
			"the policy input carries consent facts and counts, never message text or contact fields",
			"ledger refs to people are keyed hashes (HMAC under the organisation's pepper)",
			"message content is not logged and is scrubbed on erasure",
			"no client IP address is stored: not in sessions, keys, the ledger or any table; the rate limiter keeps it in memory only and logs do not carry it",
		},
		Rights: rights,
	}
	if ev.retention.MinimalFields {
		p.Minimisation[0] = "minimal fields only (retention profile minimal_fields): username, language and timezone are refused on import and update and were cleared when the profile was applied; contacts hold a chat id and consent"
	}
	if ev.retention.Profile != "" {
		if prof, ok := store.RetentionProfileByName(ev.retention.Profile); ok {
			p.Minimisation = append(p.Minimisation, fmt.Sprintf("retention profile %s in force (%q): %s; limits: %s", prof.Name, prof.Promise, prof.Keeps, prof.Limits))
		}
	}
	if !g.Deployment.Pseudonymised {
		p.Minimisation[2] = "ledger refs to people are contact ids: no pseudonymisation pepper is configured"
	}
	total := 0
	for _, n := range ev.actions {
		total += n
	}
	kw := append([]string{"/stop"}, g.Deployment.OptOutKeywords...)
	p.Consent = ConsentFacts{Contacts: ev.contacts.Contacts, OptedOut: ev.contacts.OptedOut, OptOutBy: ev.contacts.OptOutBy,
		OptOutKeywords: kw, DeniedInPeriod: ev.actions[string(herald.StatusDenied)], ActionsInPeriod: total}
	p.SubjectRequests = SubjectRequests{SubjectStats: ev.subjects, Erasures: ev.erasures}
	return p
}

func (g *Generator) risks(ev *evidence, now time.Time) []Risk {
	admins := map[string]bool{}
	for _, b := range ev.bindings {
		if b.Role == herald.RoleAdmin {
			admins[b.Principal] = true
		}
	}
	active, noExpiry := 0, 0
	for _, k := range ev.keys {
		if k.RevokedAt != nil || (k.ExpiresAt != nil && !k.ExpiresAt.After(now)) {
			continue
		}
		active++
		if k.ExpiresAt == nil {
			noExpiry++
		}
	}
	access := Risk{ID: "illegitimate_access", Scenario: "Illegitimate access to personal data",
		Impact: "contact identifiers and message content read by someone without a need to know", Severity: Significant,
		Controls: []Control{
			{Measure: "role-based access per organisation (Casbin RBAC with domains)",
				Evidence: fmt.Sprintf("%d role bindings; people with admin: %d", len(ev.bindings), len(admins)), OK: len(admins) >= 1 && len(admins) <= 3},
			{Measure: "API keys expire", Evidence: fmt.Sprintf("%d active keys, %d without expiry", active, noExpiry), OK: noExpiry == 0},
			incidentControl(ev.incidents, now),
			{Measure: "pseudonymous ledger refs", Evidence: map[bool]string{true: "pepper configured: contact refs are keyed hashes", false: "no pepper: contact ids appear in ledger refs"}[g.Deployment.Pseudonymised], OK: g.Deployment.Pseudonymised},
		}}
	modification := Risk{ID: "unwanted_modification", Scenario: "Unwanted modification of data or of the audit trail",
		Impact: "a decision or a consent record altered, so the organisation can no longer prove what it did", Severity: Significant}
	switch {
	case ev.verify != nil && ev.verify.OK:
		size := ev.verify.From + ev.verify.Entries
		e := fmt.Sprintf("hash-chained ledger verified up to seq %d (size %d) at %s, %d signed checkpoints checked", size-1, size, ev.verifiedAt.Format(time.RFC3339), ev.verify.Checkpoints)
		modification.Controls = append(modification.Controls, Control{Measure: "hash-chained, Merkle-committed ledger, append-only in the database", Evidence: e, OK: true})
	case ev.verify != nil:
		modification.Controls = append(modification.Controls, Control{Measure: "hash-chained, Merkle-committed ledger, append-only in the database",
			Evidence: "ledger verification FAILED: " + ev.verify.Problem + ev.verifyErr, OK: false})
	default:
		modification.Controls = append(modification.Controls, Control{Measure: "hash-chained, Merkle-committed ledger, append-only in the database",
			Evidence: "not verified: " + ev.verifyErr, OK: false})
	}
	if ev.checkpoint != nil {
		modification.Controls = append(modification.Controls, Control{Measure: "signed checkpoints (Ed25519 signed notes)",
			Evidence: fmt.Sprintf("last signed checkpoint at size %d, %s", ev.checkpoint.Size, ev.checkpoint.CreatedAt.UTC().Format(time.RFC3339)), OK: true})
	} else {
		modification.Controls = append(modification.Controls, Control{Measure: "signed checkpoints (Ed25519 signed notes)", Evidence: "no signed checkpoint yet", OK: false})
	}
	disappearance := Risk{ID: "disappearance", Scenario: "Disappearance of data",
		Impact: "consent records or the audit trail lost, messages resent or unprovable", Severity: Significant}
	if ev.drill != nil {
		rto := attrSeconds(ev.drill, "rto_seconds")
		rpo := attrSeconds(ev.drill, "rpo_seconds")
		ok, _ := ev.drill.Attrs["ok"].(bool)
		disappearance.Controls = append(disappearance.Controls, Control{Measure: "recovery drills (herald drill)",
			Evidence: fmt.Sprintf("last drill %s: RTO measured %s, RPO %s (targets %s / %s)", ev.drill.Time.UTC().Format(time.RFC3339), rto, rpo, TargetRTO, TargetRPO),
			OK:       ok && rto <= TargetRTO && rpo <= TargetRPO})
	} else {
		disappearance.Controls = append(disappearance.Controls, Control{Measure: "recovery drills (herald drill)", Evidence: "no recovery drill recorded", OK: false})
	}
	disappearance.Controls = append(disappearance.Controls, Control{Measure: "retention purges only what has expired, leaving tombstones",
		Evidence: retentionEvidence(ev), OK: true})
	frozen := ev.accounts[herald.AccountFrozen]
	ban := Risk{ID: "telegram_ban", Scenario: "Account banned by Telegram after spam reports",
		Impact: "the organisation loses its channel to the people it serves", Severity: Limited,
		Controls: []Control{
			{Measure: "frequency caps, quiet hours and risk scoring by policy; Telegram rate limits per bot, chat and group",
				Evidence: fmt.Sprintf("%d accounts, %d frozen by Telegram flood signals", sum(ev.accounts), frozen), OK: frozen == 0},
			{Measure: "opt-outs honoured at once and re-checked at send time",
				Evidence: fmt.Sprintf("%d opt-outs honoured", ev.contacts.OptedOut), OK: true},
		}}
	unsolicited := Risk{ID: "unsolicited_messages", Scenario: "Unsolicited messages sent to people",
		Impact: "people receive messages they never agreed to (ePrivacy, Art. 21)", Severity: Significant,
		Controls: []Control{
			{Measure: "no lawful basis for the purpose: deny (policy fails closed)",
				Evidence: fmt.Sprintf("%d of %d actions denied by policy in the period", ev.actions[string(herald.StatusDenied)], sum(ev.actions)), OK: true},
			{Measure: "every contact carries a legal basis and its source", Evidence: fmt.Sprintf("%d consent records over %d contacts", sumBases(ev.bases), ev.contacts.Contacts), OK: true},
			{Measure: "data-subject requests answered within 30 days (restriction and objection stop sends)",
				Evidence: fmt.Sprintf("%d requests received in the period, %d completed (%d on time); %d open, %d overdue", ev.subjects.Received, ev.subjects.Completed, ev.subjects.OnTime, ev.subjects.Open, ev.subjects.Overdue),
				OK:       ev.subjects.Overdue == 0},
		}}
	leak := Risk{ID: "token_leak", Scenario: "Bot token or session leaked",
		Impact: "someone sends in the organisation's name, bypassing every policy", Severity: Maximum,
		Controls: []Control{
			{Measure: "tokens kept in the secret store, never returned by the API or logged", Evidence: "secret store: " + g.secretStoreName(), OK: true},
			{Measure: "API keys expire", Evidence: fmt.Sprintf("%d active keys without expiry", noExpiry), OK: noExpiry == 0},
		}}
	out := []Risk{access, modification, disappearance, ban, unsolicited, leak}
	for i := range out {
		out[i].Likelihood = likelihood(out[i].Controls)
	}
	return out
}

// likelihood rates a scenario from its controls: every control evidenced
// → negligible; one failing → limited; more → significant; all → maximum.
func likelihood(cs []Control) string {
	bad := 0
	for _, c := range cs {
		if !c.OK {
			bad++
		}
	}
	switch {
	case bad == 0:
		return Negligible
	case bad == len(cs):
		return Maximum
	case bad == 1:
		return Limited
	default:
		return Significant
	}
}

func retentionEvidence(ev *evidence) string {
	if ev.purged == nil {
		return fmt.Sprintf("payload retention %s; the retention job has not purged anything yet", days(ev.retention.Payloads))
	}
	n, _ := ev.purged.Attrs["payloads"].(float64)
	return fmt.Sprintf("payload retention %s; last purge at seq %d, %s, removed %d", days(ev.retention.Payloads), ev.purged.Seq, ev.purged.Time.UTC().Format(time.RFC3339), int(n))
}

func attrSeconds(e *ledger.Entry, key string) time.Duration {
	switch v := e.Attrs[key].(type) {
	case float64:
		return time.Duration(v * float64(time.Second))
	case int64:
		return time.Duration(v) * time.Second
	case int:
		return time.Duration(v) * time.Second
	}
	return 0
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sumBases(bs []store.BasisCount) int {
	n := 0
	for _, b := range bs {
		n += b.Contacts
	}
	return n
}

// actionPlan is the organisation's stored plan, or, until it edits one,
// one open item per failing control.
func (g *Generator) actionPlan(ctx context.Context, org string, risks []Risk) ([]Action, error) {
	raw, err := g.Store.DPIAPlan(ctx, org)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		var plan []Action
		if err := json.Unmarshal(raw, &plan); err != nil {
			return nil, fmt.Errorf("dpia: decode stored plan of org %q: %w", org, err)
		}
		return plan, nil
	}
	plan := []Action{}
	for _, r := range risks {
		for _, c := range r.Controls {
			if !c.OK {
				plan = append(plan, Action{Risk: r.ID, Action: "restore the control: " + c.Measure + " (" + c.Evidence + ")", Status: "open"})
			}
		}
	}
	return plan, nil
}

func (g *Generator) validation(ctx context.Context, org string) (Validation, error) {
	var v Validation
	a, err := g.Store.LastLedgerEntry(ctx, org, KindApproved)
	if err != nil {
		return v, err
	}
	if a != nil {
		h, _ := a.Attrs["report_hash"].(string)
		rr, _ := a.Attrs["residual_risk"].(string)
		v.Approved = &Approval{ReportHash: h, By: a.Actor, At: a.Time.UTC(), ResidualRisk: rr, Seq: a.Seq}
	}
	gen, err := g.Store.LastLedgerEntry(ctx, org, KindGenerated)
	if err != nil {
		return v, err
	}
	if gen != nil {
		h, _ := gen.Attrs["report_hash"].(string)
		v.PreviousGenerated = &LedgerRef{Seq: gen.Seq, At: gen.Time.UTC(), ReportHash: h}
	}
	return v, nil
}

func incidentSummary(ins []store.Incident, now time.Time) Incidents {
	var out Incidents
	for i, in := range ins {
		if i == 0 {
			out.Last = &IncidentRef{ID: in.ID, DetectedAt: in.DetectedAt.UTC(), Status: in.Status, AffectedSubjects: in.AffectedSubjects}
		}
		if !in.DetectedAt.Before(now.Add(-period)) {
			out.InPeriod++
		}
		switch {
		case in.Status == "open" && in.Overdue:
			out.Open++
			out.Overdue++
		case in.Status == "open":
			out.Open++
		case in.NotifiedAt != nil && !in.NotifiedAt.After(in.DeadlineAt):
			out.NotifiedOnTime++
		default:
			out.NotifiedLate++
		}
	}
	return out
}

// incidentControl is the breach protocol's evidence: every breach notified
// within 72 hours, none open past its deadline.
func incidentControl(ins []store.Incident, now time.Time) Control {
	s := incidentSummary(ins, now)
	return Control{Measure: "breach register with the Art. 33 72-hour clock (POST /v1/incidents)",
		Evidence: fmt.Sprintf("%d incidents in the period; %d open (%d past 72 h); %d notified on time, %d late", s.InPeriod, s.Open, s.Overdue, s.NotifiedOnTime, s.NotifiedLate),
		OK:       s.Overdue == 0 && s.NotifiedLate == 0}
}
