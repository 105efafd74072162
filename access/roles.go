// Package access decides who may do what in an organisation. Resources are
// typed ("accounts/<id>", "actions", "contacts", "keys", "ledger", …) so a
// rule can name one account; verbs are short words ("submit", "read", …).
//
// RoleMatrix is the built-in role model. It is the authorizer the gateway
// uses until per-organisation Casbin policies (stored in the database) take
// over; the same matrix seeds those policies, so the two agree by design.
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
)

// permission is a resource type and a verb; "*" matches any verb.
type permission struct{ resource, verb string }

// roleMatrix is the built-in policy: role → what it may do in its org.
var roleMatrix = map[string][]permission{
	herald.RoleAdmin: {
		{"accounts", "*"}, {"keys", "*"}, {"roles", "*"}, {"settings", "*"},
		{"actions", VerbRead}, {"actions", VerbCancel}, {"contacts", VerbRead}, {"ledger", VerbRead},
	},
	herald.RoleComplianceOfficer: {
		{"policies", "*"}, {"contacts", "*"}, {"actions", VerbRead}, {"actions", VerbCancel},
		{"accounts", VerbRead}, {"ledger", VerbRead}, {"ledger", VerbExport}, {"reports", "*"}, {"approvals", "*"},
	},
	herald.RoleOperator: {
		{"accounts", VerbRead}, {"accounts", VerbSubmit}, {"actions", VerbRead}, {"actions", VerbSubmit},
		{"actions", VerbCancel}, {"contacts", VerbRead},
	},
	herald.RoleApprover: {
		{"actions", VerbRead}, {"approvals", "*"}, {"accounts", VerbRead}, {"contacts", VerbRead},
	},
	herald.RoleAuditor: {
		{"actions", VerbRead}, {"accounts", VerbRead}, {"contacts", VerbRead}, {"ledger", VerbRead},
		{"ledger", VerbExport}, {"reports", VerbRead}, {"policies", VerbRead},
	},
}

// RoleMatrix authorizes by the built-in role model.
type RoleMatrix struct{}

// Authorize returns nil if p's role may do verb on resource, else a
// forbidden error. The resource's org is always p's own: callers never pass
// another org's ids here, they are filtered out by the store first.
func (RoleMatrix) Authorize(_ context.Context, p herald.Principal, resource, verb string) error {
	typ, _, _ := strings.Cut(resource, "/")
	for _, perm := range roleMatrix[p.Role] {
		if perm.resource == typ && (perm.verb == "*" || perm.verb == verb) {
			return nil
		}
	}
	return herald.Errorf(herald.CodeForbidden, "role %q may not %s %s", p.Role, verb, typ)
}
