package access

import (
	"context"
	"testing"

	"github.com/heraldhq/herald"
)

func TestRoleMatrix(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		role, resource, verb string
		allowed              bool
	}{
		{herald.RoleOperator, "accounts/abc", VerbSubmit, true},
		{herald.RoleOperator, "keys", VerbWrite, false},
		{herald.RoleAuditor, "actions", VerbSubmit, false},
		{herald.RoleAuditor, "ledger", VerbExport, true},
		{herald.RoleAdmin, "keys", VerbWrite, true},
		{herald.RoleAdmin, "accounts/x", VerbSubmit, true},
		{herald.RoleApprover, "accounts/x", VerbSubmit, false},
		{herald.RoleComplianceOfficer, "contacts", VerbWrite, true},
		{"nobody", "actions", VerbRead, false},
	}
	for _, c := range cases {
		err := RoleMatrix{}.Authorize(ctx, herald.Principal{ID: "p", Org: "o", Role: c.role}, c.resource, c.verb)
		if (err == nil) != c.allowed {
			t.Errorf("%s %s %s: err = %v, want allowed=%v", c.role, c.verb, c.resource, err, c.allowed)
		}
		if err != nil && herald.ErrorCode(err) != herald.CodeForbidden {
			t.Errorf("denial must be forbidden, got %v", err)
		}
	}
}
