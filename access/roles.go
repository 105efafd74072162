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
)

// Resources lists every resource type, in the order the role matrix table shows them.
var Resources = []string{ResAccounts, ResActions, ResPolicies, ResLedger, ResContacts, ResReports,
	ResKeys, ResRoles, ResApprovals, ResSettings, ResRetention}

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
		{ResActions, VerbCancel}, {ResContacts, VerbRead},
	},
	herald.RoleApprover: {
		{ResActions, VerbRead}, {ResApprovals, VerbAny}, {ResAccounts, VerbRead}, {ResContacts, VerbRead},
	},
	herald.RoleAuditor: {
		{ResActions, VerbRead}, {ResAccounts, VerbRead}, {ResContacts, VerbRead}, {ResLedger, VerbRead},
		{ResLedger, VerbExport}, {ResReports, VerbRead}, {ResPolicies, VerbRead}, {ResRetention, VerbRead},
	},
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
	typ, _, _ := strings.Cut(resource, "/")
	for _, perm := range roleMatrix[p.Role] {
		if perm.Resource == typ && (perm.Verb == VerbAny || perm.Verb == verb) {
			return nil
		}
	}
	return herald.Errorf(herald.CodeForbidden, "role %q may not %s %s", p.Role, verb, typ)
}
