// Package access decides who may do what in an organisation. Resources are
// typed ("accounts/<id>", "actions", "contacts", "keys", "ledger", …) so a
// rule can name one account; verbs are short words ("submit", "read", …).
//
// The built-in role matrix below is the default policy. Enforcer (casbin.go)
// loads it, for every organisation at once, into a Casbin RBAC-with-domains
// model (model.conf) together with the role bindings stored in the database;
// RoleMatrix authorizes by the matrix and the key's role alone and remains
// for tools and tests that have no database.
package access

import (
	"context"
	"strings"

	"github.com/heraldhq/herald"
)

// Verbs.
const (
	VerbRead    = "read"
	VerbSubmit  = "submit"
	VerbCancel  = "cancel"
	VerbWrite   = "write"
	VerbApprove = "approve"
	VerbExport  = "export"
	// VerbAny in a permission matches every verb.
	VerbAny = "*"
)

// Verbs lists every verb a request may carry.
var Verbs = []string{VerbRead, VerbSubmit, VerbCancel, VerbWrite, VerbApprove, VerbExport}

// Resource types. A request names a type ("accounts", for the collection)
// or one item of it ("accounts/<id>").
const (
	ResAccounts  = "accounts"
	ResActions   = "actions"
	ResPolicies  = "policies"
	ResLedger    = "ledger"
	ResContacts  = "contacts"
	ResReports   = "reports"
	ResKeys      = "keys"
	ResRoles     = "roles"
	ResApprovals = "approvals"
	ResSettings  = "settings"
	// ResRetention is the organisation's retention configuration
	// (GET/PUT /v1/retention): admins and compliance officers set it,
	// auditors read it.
	ResRetention = "retention"
	// ResActionsOwn is the caller's own actions (those it submitted): a
	// permission on it reaches no one else's. A permission on ResActions
	// reaches every action, the caller's own included.
	ResActionsOwn = "actions/own"
	// ResStages is approval stages, one item per role a stage can require
	// ("stages/<role>", see StageResource): voting on a stage needs the
	// approve verb on that stage's item.
	ResStages = "stages"
)

// StageResource is the resource of an approval stage that requires role.
func StageResource(role string) string { return ResStages + "/" + role }

// Resources lists every resource type, in the order the role matrix table
// shows them, followed by the fixed items the matrix also shows (the
// caller's own actions, each role's approval stage).
var Resources = []string{ResAccounts, ResActions, ResPolicies, ResLedger, ResContacts, ResReports,
	ResKeys, ResRoles, ResApprovals, ResSettings, ResRetention}

// MatrixRows is what the role matrix shows: every resource type, then the
// fixed items permissions name.
var MatrixRows = append(append([]string{}, Resources...), ResActionsOwn,
	StageResource(herald.RoleAdmin), StageResource(herald.RoleComplianceOfficer), StageResource(herald.RoleOperator),
	StageResource(herald.RoleApprover), StageResource(herald.RoleAuditor))

// Permission is a resource pattern and a verb ("*" = any verb).
type Permission struct{ Resource, Verb string }

type permission = Permission

// roleMatrix is the built-in policy: role → what it may do in its org.
var roleMatrix = map[string][]permission{
	herald.RoleAdmin: {
		{ResAccounts, VerbAny}, {ResKeys, VerbAny}, {ResRoles, VerbAny}, {ResSettings, VerbAny},
		{ResActions, VerbRead}, {ResActions, VerbCancel}, {ResContacts, VerbRead}, {ResLedger, VerbRead},
		{ResRetention, VerbAny},
	},
	herald.RoleComplianceOfficer: {
		{ResPolicies, VerbAny}, {ResContacts, VerbAny}, {ResActions, VerbRead}, {ResActions, VerbCancel},
		{ResAccounts, VerbRead}, {ResLedger, VerbRead}, {ResLedger, VerbExport}, {ResReports, VerbAny}, {ResApprovals, VerbAny},
		{ResRetention, VerbAny},
	},
	herald.RoleOperator: {
		{ResAccounts, VerbRead}, {ResAccounts, VerbSubmit}, {ResActions, VerbRead}, {ResActions, VerbSubmit},
		{ResActionsOwn, VerbCancel}, {ResContacts, VerbRead},
	},
	herald.RoleApprover: {
		{ResActions, VerbRead}, {ResApprovals, VerbAny}, {ResAccounts, VerbRead}, {ResContacts, VerbRead},
	},
	herald.RoleAuditor: {
		{ResActions, VerbRead}, {ResAccounts, VerbRead}, {ResContacts, VerbRead}, {ResLedger, VerbRead},
		{ResLedger, VerbExport}, {ResReports, VerbRead}, {ResPolicies, VerbRead}, {ResRetention, VerbRead},
	},
}

// Each role may vote on the approval stages that require it (and, like
// before, only if it may also approve at all: {approvals, approve}).
func init() {
	for _, role := range herald.Roles {
		roleMatrix[role] = append(roleMatrix[role], permission{StageResource(role), VerbApprove})
	}
}

// RolePermissions returns the built-in permissions of role (nil for an
// unknown role). The slice is a copy.
func RolePermissions(role string) []Permission {
	return append([]Permission(nil), roleMatrix[role]...)
}

// RoleMatrix authorizes by the built-in role model.
type RoleMatrix struct{}

// Authorize returns nil if p's role may do verb on resource, else a
// forbidden error. The resource's org is always p's own: callers never pass
// another org's ids here, they are filtered out by the store first.
func (RoleMatrix) Authorize(_ context.Context, p herald.Principal, resource, verb string) error {
	for _, perm := range roleMatrix[p.Role] {
		if ResourceMatch(resource, perm.Resource) && (perm.Verb == VerbAny || perm.Verb == verb) {
			return nil
		}
	}
	typ, _, _ := strings.Cut(resource, "/")
	return herald.Errorf(herald.CodeForbidden, "role %q may not %s %s", p.Role, verb, typ)
}
