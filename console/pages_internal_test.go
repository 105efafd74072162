package console

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestActionsPageRendersWithACursor: the "older" link indexes every filter
// (a missing map key would fail the render once a cursor exists).
func TestActionsPageRendersWithACursor(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Request: httptest.NewRequest("GET", "/actions", nil), c: &Console{cat: cat}, Lang: "en"}
	d := actionsData{Filter: map[string]string{"status": "", "account": "", "purpose": "", "cursor": "", "kind": "send_message"}, Next: "01a2"}
	var sb strings.Builder
	if err := pages["actions"].ExecuteTemplate(&sb, "layout", View{Request: r, Title: "actions.title", Data: d}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `href="/actions?cursor=01a2&amp;kind=send_message"`) {
		t.Errorf("no older link carrying the filters:\n%s", sb.String())
	}
}
