package policyinput

import "testing"

// TestRecipientKey: every address form of one chat has one key, and
// different chats never share one.
func TestRecipientKey(t *testing.T) {
	same := [][]string{
		{"4711", "user:4711:99", "user:4711:-5"},
		{"-1007", "channel:7:123", "-1007"},
		{"-7", "chat:7"},
		{"@alice_s", "@Alice_S", "@ALICE_S"},
	}
	seen := map[string]int{}
	for i, group := range same {
		want := RecipientKey(group[0])
		for _, addr := range group {
			if got := RecipientKey(addr); got != want {
				t.Errorf("RecipientKey(%q) = %q, want %q (same chat as %q)", addr, got, want, group[0])
			}
		}
		if j, ok := seen[want]; ok {
			t.Errorf("groups %d and %d share key %q", j, i, want)
		}
		seen[want] = i
	}
}
