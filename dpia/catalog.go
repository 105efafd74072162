package dpia

// The data map's declarations: every category of personal data Herald
// holds, where the code stores it and why. The generator checks each
// declared table against the live schema and reports live tables that are
// not declared here (SchemaMap.Undeclared): a table added without its DPIA
// entry shows up as a finding in the next report instead of going unseen.

// category is a declaration; the generator fills in the live figures.
type category struct {
	id, name string
	fields   []Field
	storage  []string // tables (or "stderr logs", outside the database)
	purpose  string
	// resource is the access resource whose "read" verb reads the category.
	resource string
	// bases: "counted" takes the organisation's consent records; otherwise
	// the processing's own basis.
	bases        []string
	flows        []string
	retention    string // key into the retention configuration
	subjects     string // "contacts" or "staff"
	pseudonymous bool
}

// minimalFieldsDropped are the contact fields the minimal_fields retention
// profile refuses and clears: the data map leaves them out under it.
var minimalFieldsDropped = map[string]bool{"username": true, "timezone": true, "language": true}

// Retention keys.
const (
	retContacts    = "contacts"
	retPayloads    = "payloads"
	retEntries     = "entries"
	retDecisions   = "decisions"
	retContent     = "content"
	retReceipts    = "receipts"
	retFacadeCalls = "facade_calls"
	retLogs        = "logs"
	retStaff       = "staff"
)

// Flow names.
const (
	flowTelegram = "Telegram (Bot API / MTProto)"
	flowSecrets  = "Secret store (Vault or encrypted local file)"
	flowLogs     = "Technical logs (stderr, the operator's log pipeline)"
	flowAuditor  = "Auditors (ledger exports, DPIA)"
	// flowFacadeBot: updates handed to a bot governed by the Bot API facade.
	flowFacadeBot = "The organisation's own bot (Bot API facade: getUpdates or its webhook)"
)

const basisCounted = "counted"

var categories = []category{
	{id: "contacts", name: "Contact identifiers", storage: []string{"contacts"},
		fields:   []Field{{Name: "chat_id"}, {Name: "username", Optional: true}, {Name: "timezone", Optional: true}, {Name: "language", Optional: true}, {Name: "last_inbound_at", Optional: true}},
		purpose:  "Address the messages the organisation is entitled to send, in the person's own time zone (quiet hours).",
		resource: "contacts", bases: []string{basisCounted}, flows: []string{flowTelegram},
		retention: retContacts, subjects: "contacts"},
	{id: "consents", name: "Consent and legal-basis records", storage: []string{"consents", "contacts", "consent_events"},
		fields:   []Field{{Name: "purpose"}, {Name: "basis"}, {Name: "source"}, {Name: "granted_at"}, {Name: "opted_out_at", Optional: true}, {Name: "opt_out_source", Optional: true}},
		purpose:  "Prove the lawful basis of each message (Art. 7(1)) and honour opt-outs.",
		resource: "contacts", bases: []string{"legal_obligation"}, flows: []string{flowAuditor},
		retention: retContacts, subjects: "contacts"},
	{id: "message_content", name: "Message content", storage: []string{"actions"},
		fields:   []Field{{Name: "content"}, {Name: "target"}},
		purpose:  "Deliver the organisation's messages and show what was sent.",
		resource: "actions", bases: []string{basisCounted}, flows: []string{flowTelegram},
		retention: retContent, subjects: "contacts"},
	{id: "content_previews", name: "Content previews and contact fields in ledger payloads", storage: []string{"ledger_payloads"},
		fields:   []Field{{Name: "payload"}},
		purpose:  "Investigate a complaint about a message; kept apart from the chain so it can be purged and erased.",
		resource: "ledger", bases: []string{"legitimate_interest"}, flows: []string{flowAuditor},
		retention: retPayloads, subjects: "contacts"},
	{id: "receipts", name: "Delivery receipts", storage: []string{"actions", "action_events"},
		fields:   []Field{{Name: "receipt"}, {Name: "status"}, {Name: "error_code", Optional: true}},
		purpose:  "Know whether a message arrived, never resend one that may have.",
		resource: "actions", bases: []string{basisCounted}, flows: nil,
		retention: retReceipts, subjects: "contacts"},
	{id: "contact_labels", name: "Contact tags and attributes", storage: []string{"contact_tags", "contact_attributes"},
		fields:   []Field{{Name: "tag", Optional: true}, {Name: "attribute", Optional: true}},
		purpose:  "Select the recipients of a campaign (segments) and personalise its template ({{first_name}}).",
		resource: "contacts", bases: []string{basisCounted}, flows: []string{flowTelegram},
		retention: retContacts, subjects: "contacts"},
	{id: "campaign_recipients", name: "Campaign recipient lists", storage: []string{"campaign_recipients"},
		fields:   []Field{{Name: "contact"}, {Name: "status"}, {Name: "reason", Optional: true}},
		purpose:  "Fix who a campaign addresses once, so a resumed fan-out never messages a person twice, and report per recipient.",
		resource: "actions", bases: []string{basisCounted}, flows: nil,
		retention: retContacts, subjects: "contacts"},
	{id: "facade_calls", name: "Bot API facade call hashes", storage: []string{"facade_calls"},
		fields:   []Field{{Name: "call hash"}, {Name: "action"}},
		purpose:  "Answer a bot's retried call from the action its first attempt created, so a retry never sends twice.",
		resource: "actions", bases: []string{basisCounted}, flows: nil,
		retention: retFacadeCalls, subjects: "contacts", pseudonymous: true},
	{id: "facade_updates", name: "Inbound updates queued for Bot API facade bots", storage: []string{"facade_updates"},
		fields:   []Field{{Name: "payload"}, {Name: "chat_id"}},
		purpose:  "Hand a person's messages to the organisation's own bot (getUpdates or its webhook) after Herald recorded the opt-outs they carry.",
		resource: "accounts", bases: []string{basisCounted}, flows: []string{flowFacadeBot},
		retention: retFacadeCalls, subjects: "contacts"},
	{id: "decisions", name: "Policy decisions and their inputs", storage: []string{"decision_records", "actions"},
		fields:   []Field{{Name: "decision"}, {Name: "input"}},
		purpose:  "Explain and replay every automated decision (Art. 22 human review).",
		resource: "actions", bases: []string{"legal_obligation"}, flows: []string{flowAuditor},
		retention: retDecisions, subjects: "contacts", pseudonymous: true},
	{id: "ledger_refs", name: "Audit ledger entries", storage: []string{"ledger_entries", "ledger_checkpoints", "ledger_anchors", "ledger_payload_tombstones"},
		fields:   []Field{{Name: "refs"}, {Name: "attrs"}, {Name: "actor"}},
		purpose:  "Tamper-evident proof of every decision and change (accountability, Art. 5(2)).",
		resource: "ledger", bases: []string{"legal_obligation"}, flows: []string{flowAuditor},
		retention: retEntries, subjects: "contacts", pseudonymous: true},
	{id: "approvals", name: "Approval votes and override justifications", storage: []string{"approval_votes", "action_overrides", "campaign_approvals", "campaign_approval_votes"},
		fields:   []Field{{Name: "principal"}, {Name: "comment", Optional: true}, {Name: "justification"}},
		purpose:  "Human review of automated decisions and the four-eyes principle.",
		resource: "actions", bases: []string{"legitimate_interest"}, flows: []string{flowAuditor},
		retention: retEntries, subjects: "staff"},
	{id: "staff", name: "Staff identities and API keys", storage: []string{"api_keys", "access_bindings", "facade_tokens", "people", "platform_operators", "console_sessions"},
		fields:   []Field{{Name: "principal"}, {Name: "telegram_id", Optional: true}, {Name: "role"}, {Name: "last_used_at", Optional: true}},
		purpose:  "Authenticate people and machines and attribute every change to one of them.",
		resource: "keys", bases: []string{"contract"}, flows: []string{flowSecrets},
		retention: retStaff, subjects: "staff"},
	{id: "subject_requests", name: "Data-subject requests", storage: []string{"subject_requests"},
		fields:   []Field{{Name: "kind"}, {Name: "contact"}, {Name: "received_at"}, {Name: "due_at"}, {Name: "completed_at", Optional: true}},
		purpose:  "Answer the rights of the people concerned within the legal time and prove it (Art. 12).",
		resource: "reports", bases: []string{"legal_obligation"}, flows: []string{flowAuditor},
		retention: retEntries, subjects: "contacts"},
	{id: "incidents", name: "Breach records", storage: []string{"incidents"},
		fields:   []Field{{Name: "title"}, {Name: "description", Optional: true}, {Name: "detected_at"}, {Name: "affected_subjects"}},
		purpose:  "Document personal data breaches and notify within 72 hours (Art. 33(5)).",
		resource: "reports", bases: []string{"legal_obligation"}, flows: []string{flowAuditor},
		retention: retEntries, subjects: "contacts"},
	{id: "technical_logs", name: "Technical logs", storage: []string{"stderr logs"},
		fields:   []Field{{Name: "request_id"}, {Name: "route"}, {Name: "org"}, {Name: "principal"}},
		purpose:  "Operate the service; logs never carry message text, contact fields, chat ids or keys.",
		resource: "", bases: []string{"legitimate_interest"}, flows: []string{flowLogs},
		retention: retLogs, subjects: "staff"},
}

// nonPersonal are live tables that hold no personal data (configuration,
// queue state, hashes): declared so they are not reported as undeclared.
var nonPersonal = []string{
	"orgs", "accounts", "facade_webhooks", "jobs", "ledger_heads", "policy_bundles", "access_version", "account_leases",
	"approval_stages", "org_policy_params", "schema_migrations", "dpia_plans",
	"org_retention", "retention_runs", "segments", "campaigns", "send_counters",
}

// flowsDeclared describes each flow's protection.
var flowsDeclared = []Flow{
	{To: flowTelegram, Data: []string{"chat id", "message content"}, Protection: "TLS to api.telegram.org or MTProto encryption; sent only after the allow decision is in the ledger"},
	{To: flowSecrets, Data: []string{"bot tokens", "MTProto sessions", "ledger signing key", "pseudonymisation pepper"}, Protection: "set from the deployment"},
	{To: flowLogs, Data: []string{"request ids", "routes", "organisation and principal ids"}, Protection: "no message text, contact fields, chat ids or keys by construction"},
	{To: flowAuditor, Data: []string{"pseudonymous ledger entries", "retained payloads"}, Protection: "signed checkpoints; exports need the ledger export permission"},
}

var rights = []Right{
	{Right: "access and portability (Art. 15, 20)", How: "POST /v1/subject-requests (kind access or portability), then GET /v1/subject-requests/{id}/export: everything held, with ledger inclusion proofs"},
	{Right: "rectification (Art. 16)", How: "PATCH /v1/contacts/{id}, recorded as a rectification request"},
	{Right: "restriction (Art. 18)", How: "a completed restriction request: policy denies every purpose until it is lifted"},
	{Right: "erasure (Art. 17)", How: "DELETE /v1/contacts/{id}: payloads, content and chat id erased, the ledger still verifies"},
	{Right: "objection (Art. 21)", How: "/stop, opt-out keywords, POST /v1/contacts/{id}/opt-out; an objection request denies marketing and legitimate-interest purposes until lifted"},
	{Right: "human review of automated decisions (Art. 22)", How: "POST /v1/actions/{id}/override with a written justification, ledgered"},
}
