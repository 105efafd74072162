// Package herald holds Herald's domain: organisations, accounts, contacts,
// actions and their state machine, API keys, and the typed errors every layer
// speaks. It depends on nothing but the standard library; storage, HTTP,
// policy and delivery live in their own packages and speak these types.
package herald

import "time"

// Purposes an action can be sent for. Consent is recorded per purpose.
const (
	PurposeMarketing     = "marketing"
	PurposeTransactional = "transactional"
	PurposeSupport       = "support"
	PurposeService       = "service"
)

// Purposes lists every valid purpose.
var Purposes = []string{PurposeMarketing, PurposeTransactional, PurposeSupport, PurposeService}

// Legal bases a contact's consent record may carry (GDPR Art. 6).
const (
	BasisConsent            = "consent"
	BasisLegitimateInterest = "legitimate_interest"
	BasisContract           = "contract"
)

// Roles a principal can hold in an organisation.
const (
	RoleAdmin             = "admin"
	RoleComplianceOfficer = "compliance_officer"
	RoleOperator          = "operator"
	RoleApprover          = "approver"
	RoleAuditor           = "auditor"
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RoleComplianceOfficer, RoleOperator, RoleApprover, RoleAuditor}

// Org is a tenant. Every row Herald stores belongs to exactly one.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Timezone  string    `json:"timezone"`
	CreatedAt time.Time `json:"created_at"`
	// SuspendedAt is set while the organisation is suspended: its keys and
	// sessions are refused and its delivery queue is held.
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
	// DeletedAt is set once its personal data is erased (DELETE /v1/orgs/{id}).
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// Status names an organisation's state: "active", "suspended" or "deleted".
func (o Org) Status() string {
	switch {
	case o.DeletedAt != nil:
		return "deleted"
	case o.SuspendedAt != nil:
		return "suspended"
	}
	return "active"
}

// Account kinds and connectors.
const (
	AccountBot  = "bot"
	AccountUser = "user"

	ConnectorSandbox = "sandbox"
	ConnectorBotAPI  = "botapi"
	ConnectorMTProto = "mtproto"

	AccountActive   = "active"
	AccountPaused   = "paused"
	AccountFrozen   = "frozen"
	AccountDisabled = "disabled"
)

// Account is a Telegram identity Herald acts through. It references its
// secret by path; the secret itself never enters the database.
type Account struct {
	ID            string     `json:"id"`
	Org           string     `json:"org"`
	Name          string     `json:"name"`
	Kind          string     `json:"kind"`
	Connector     string     `json:"connector"`
	Status        string     `json:"status"`
	SecretRef     string     `json:"secret_ref,omitempty"`
	PaidBroadcast bool       `json:"paid_broadcast"`
	FrozenUntil   *time.Time `json:"frozen_until,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Consent is one purpose's legal basis for contacting a person.
type Consent struct {
	Purpose string    `json:"purpose"`
	Basis   string    `json:"basis"`
	Source  string    `json:"source"`
	At      time.Time `json:"at"`
}

// Contact is a person (or chat) Herald may message, with what makes that lawful.
type Contact struct {
	ID            string     `json:"id"`
	Org           string     `json:"org"`
	ChatID        string     `json:"chat_id"`
	Username      string     `json:"username,omitempty"` // public @username, lower case without "@"
	Timezone      string     `json:"timezone,omitempty"`
	Language      string     `json:"language,omitempty"`
	Consents      []Consent  `json:"consents"`
	OptedOutAt    *time.Time `json:"opted_out_at,omitempty"`
	OptOutSource  string     `json:"opt_out_source,omitempty"`
	LastInboundAt *time.Time `json:"last_inbound_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`

	// RestrictedAt and ObjectedAt are set by a completed restriction
	// (Art. 18) or objection (Art. 21) request until it is lifted.
	RestrictedAt *time.Time `json:"restricted_at,omitempty"`
	ObjectedAt   *time.Time `json:"objected_at,omitempty"`
}

// APIKey is a machine credential. Only a hash of the secret part is stored;
// the prefix identifies the key in logs and listings.
type APIKey struct {
	ID         string     `json:"id"`
	Org        string     `json:"org"`
	Principal  string     `json:"principal"`
	Role       string     `json:"role"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Principal is an authenticated caller.
type Principal struct {
	ID    string `json:"principal"`
	Org   string `json:"org"`
	Role  string `json:"role"`
	KeyID string `json:"key_id,omitempty"`
}

// Contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ValidPurpose reports whether p is a known purpose.
func ValidPurpose(p string) bool { return contains(Purposes, p) }

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return contains(Roles, r) }

// ValidBasis reports whether b is a known legal basis.
func ValidBasis(b string) bool {
	return b == BasisConsent || b == BasisLegitimateInterest || b == BasisContract
}
