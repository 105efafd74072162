package policies

import "time"

// Input is the document every decision is made from. Go builds it from the
// store; policies never read the clock or the database, so a stored Input
// replays to the same Decision. Field names are the JSON the Rego sees
// (input.action.purpose, …) and are documented in docs/policy-input.md.
type Input struct {
	// Now is the decision time (UTC). Quiet hours and frequency windows are
	// judged against it, never against the evaluator's clock.
	Now       time.Time      `json:"now"`
	Stage     string         `json:"stage"` // "submit" or "send"
	Action    ActionInput    `json:"action"`
	Actor     ActorInput     `json:"actor"`
	Account   AccountInput   `json:"account"`
	Target    TargetInput    `json:"target"`
	Frequency FrequencyInput `json:"frequency"`
	Org       OrgInput       `json:"org"`
}

// ActionInput describes what is being done, with content reduced to
// statistics: the text itself never enters the policy input.
type ActionInput struct {
	ID         string       `json:"id,omitempty"`
	Kind       string       `json:"kind"`
	Purpose    string       `json:"purpose"`
	ScheduleAt *time.Time   `json:"schedule_at,omitempty"`
	Content    ContentStats `json:"content"`
	// Recipients is the size of the broadcast this action belongs to (1 for a single send).
	Recipients int `json:"recipients"`
}

// ContentStats are the facts about a message that risk rules need.
type ContentStats struct {
	Length     int      `json:"length"`
	Links      int      `json:"links"`
	Shortened  int      `json:"shortened_links"`
	Domains    []string `json:"domains"`
	CapsRatio  float64  `json:"caps_ratio"`
	HasMedia   bool     `json:"has_media"`
	ParseMode  string   `json:"parse_mode,omitempty"`
	Exclaims   int      `json:"exclamations"`
	Mentions   int      `json:"mentions"`
	IsReply    bool     `json:"is_reply"`
	IsEditOnly bool     `json:"is_edit_only"`
}

// ActorInput is who asked for the action.
type ActorInput struct {
	Principal string   `json:"principal"`
	Roles     []string `json:"roles"`
}

// AccountInput is the sending account and its recent health.
type AccountInput struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"` // bot | user
	Connector   string     `json:"connector"`
	AgeDays     int        `json:"age_days"`
	Status      string     `json:"status"`
	FrozenUntil *time.Time `json:"frozen_until,omitempty"`
	// Recent counts over the last 24 hours, and the 7-day daily baseline.
	Sends24h        int     `json:"sends_24h"`
	Errors429_24h   int     `json:"errors_429_24h"`
	FloodWait24h    int     `json:"flood_wait_24h"`
	PeerFlood24h    int     `json:"peer_flood_24h"`
	Blocked24h      int     `json:"blocked_24h"`
	BaselineDaily7d float64 `json:"baseline_daily_7d"`
}

// TargetInput is the recipient: a contact, a group or a channel.
type TargetInput struct {
	ChatID  string        `json:"chat_id"`
	Type    string        `json:"type"` // user | group | channel
	Members int           `json:"members,omitempty"`
	Contact *ContactInput `json:"contact,omitempty"`
}

// ContactInput is what Herald knows of a person's consent. The contact's
// Telegram id and name are not part of it.
type ContactInput struct {
	ID            string                  `json:"id"`
	Timezone      string                  `json:"timezone,omitempty"`
	Language      string                  `json:"language,omitempty"`
	OptedOut      bool                    `json:"opted_out"`
	OptedOutAt    *time.Time              `json:"opted_out_at,omitempty"`
	LastInboundAt *time.Time              `json:"last_inbound_at,omitempty"`
	Consents      map[string]ConsentInput `json:"consents"` // by purpose
	// Restricted (Art. 18) and Objected (Art. 21) come from completed
	// data-subject requests; absent when false.
	Restricted bool `json:"restricted,omitempty"`
	Objected   bool `json:"objected,omitempty"`
}

// ConsentInput is one purpose's legal basis.
type ConsentInput struct {
	Basis  string    `json:"basis"` // consent | legitimate_interest | contract
	Source string    `json:"source"`
	At     time.Time `json:"at"`
}

// FrequencyInput carries what the caps are counted from. Recipient sends are
// listed (at most the last 8 days) so calendar days can be judged in the
// recipient's time zone; account and chat counters are pre-aggregated.
type FrequencyInput struct {
	Recipient []SendRecord `json:"recipient"`
	// Account counters: committed (not denied, not cancelled) sends.
	AccountLastSecond int `json:"account_last_second"`
	AccountLastMinute int `json:"account_last_minute"`
	// Cold sends are user-account messages to people who never wrote to it.
	AccountColdToday  int        `json:"account_cold_today"`
	AccountLastColdAt *time.Time `json:"account_last_cold_at,omitempty"`
	ChatLastMinute    int        `json:"chat_last_minute"`
	ChatLastPostAt    *time.Time `json:"chat_last_post_at,omitempty"`
}

// SendRecord is one earlier committed send to the same recipient.
type SendRecord struct {
	At      time.Time `json:"at"`
	Purpose string    `json:"purpose"`
}

// OrgInput is the organisation's settings relevant to policy.
type OrgInput struct {
	ID       string `json:"id"`
	Timezone string `json:"timezone"`
	// Params override the bundle's data.herald.params for this organisation
	// (caps, windows, thresholds); merged over the defaults by the policy.
	Params map[string]any `json:"params,omitempty"`
}

// Outcomes, in order of precedence when rules disagree: deny > approve > defer > allow.
const (
	OutcomeAllow   = "allow"
	OutcomeDeny    = "deny"
	OutcomeDefer   = "defer"
	OutcomeApprove = "approve"
)

// Decision is the fixed document data.herald.decision returns.
type Decision struct {
	Outcome     string       `json:"outcome"`
	DeferUntil  *time.Time   `json:"defer_until,omitempty"`
	Approvals   []Stage      `json:"approvals,omitempty"`
	Reasons     []Reason     `json:"reasons"`
	Suggestions []Suggestion `json:"suggestions"`
	Risk        Risk         `json:"risk"`
	// BundleHash identifies the policy version that decided (set by the engine).
	BundleHash string `json:"bundle_hash"`
	// InputHash is SHA-256 of the canonical input (set by the engine), so an
	// auditor can replay the decision.
	InputHash string `json:"input_hash"`
}

// Stage is one approval stage.
type Stage struct {
	Stage     int      `json:"stage"`
	Role      string   `json:"role"`
	Mode      string   `json:"mode"` // any | all
	Approvers []string `json:"approvers,omitempty"`
}

// Reason explains one rule's verdict; Rule is a stable id ("consent.missing").
type Reason struct {
	Rule        string `json:"rule"`
	Severity    string `json:"severity"` // info | warning | deny
	Message     string `json:"message"`
	Overridable bool   `json:"overridable"`
}

// Suggestion is a fix the caller can apply.
type Suggestion struct {
	Rule    string         `json:"rule"`
	Message string         `json:"message"`
	Patch   map[string]any `json:"patch,omitempty"`
}

// Risk is a 0–100 score with the factors that produced it.
type Risk struct {
	Score   int          `json:"score"`
	Factors []RiskFactor `json:"factors"`
}

// RiskFactor is one named contribution to the risk score.
type RiskFactor struct {
	Name   string `json:"name"`
	Points int    `json:"points"`
}
