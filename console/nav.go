package console

// navItem is one entry of the navigation: shown when the person may use
// Verb on Resource (an empty Resource is shown to everyone signed in).
type navItem struct {
	Path, Key, Resource, Verb string
}

// nav is the navigation, in order. A new page appends its item here.
var nav = []navItem{
	{Path: "/", Key: "nav.today"},
	{Path: "/compose", Key: "nav.compose", Resource: "actions", Verb: "submit"},
	{Path: "/approvals", Key: "nav.approvals", Resource: "actions", Verb: "read"},
	{Path: "/calendar", Key: "nav.calendar", Resource: "actions", Verb: "read"},
	{Path: "/actions", Key: "nav.actions", Resource: "actions", Verb: "read"},
	{Path: "/contacts", Key: "nav.contacts", Resource: "contacts", Verb: "read"},
	{Path: "/policies", Key: "nav.policies", Resource: "policies", Verb: "read"},
	{Path: "/audit", Key: "nav.audit", Resource: "ledger", Verb: "read"},
	{Path: "/admin", Key: "nav.admin", Resource: "keys", Verb: "read"},
}

// Nav is the navigation the person may use.
func (r *Request) Nav() []navItem {
	var out []navItem
	for _, n := range nav {
		if n.Resource == "" || r.Can(n.Resource, n.Verb) {
			out = append(out, n)
		}
	}
	return out
}
