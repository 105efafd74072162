# Shared inputs for the bundle's tests: a realistic, harmless action that
# every rule allows. Each test changes only what it is about.
package herald.test_fixtures

# 2026-03-10 is a Tuesday; 12:00 UTC is 13:00 in Berlin (CET).
base := {
	"now": "2026-03-10T12:00:00Z",
	"stage": "send",
	"action": {
		"id": "act-1",
		"kind": "message",
		"purpose": "marketing",
		"recipients": 1,
		"content": {
			"length": 180,
			"links": 0,
			"shortened_links": 0,
			"domains": [],
			"caps_ratio": 0.05,
			"has_media": false,
			"exclamations": 0,
			"mentions": 0,
			"is_reply": false,
			"is_edit_only": false,
		},
	},
	"actor": {"principal": "op-1", "roles": ["operator"]},
	"account": {
		"id": "acc-1",
		"kind": "bot",
		"connector": "botapi",
		"age_days": 400,
		"status": "active",
		"sends_24h": 100,
		"errors_429_24h": 0,
		"flood_wait_24h": 0,
		"peer_flood_24h": 0,
		"blocked_24h": 0,
		"baseline_daily_7d": 120,
	},
	"target": {
		"chat_id": "c-1",
		"type": "user",
		"contact": {
			"id": "ct-1",
			"timezone": "Europe/Berlin",
			"opted_out": false,
			"consents": {"marketing": {"basis": "consent", "source": "signup_form", "at": "2025-06-01T10:00:00Z"}},
		},
	},
	"frequency": {
		"recipient": [],
		"account_last_second": 0,
		"account_last_minute": 0,
		"account_cold_today": 0,
		"chat_last_minute": 0,
	},
	"org": {"id": "org-1", "timezone": "Europe/Berlin"},
}

# patched returns base deep-merged with patch.
patched(patch) := object.union(base, patch)

# channel is a post to a mid-sized channel, which has no contact.
channel := object.union(object.remove(base, ["target"]), {"target": {"chat_id": "ch-1", "type": "channel", "members": 800}})

# rules lists the rule ids of a set of verdicts.
rules(verdicts) := {v.rule | some v in verdicts}
