package herald.consent_restriction_test

import data.herald
import data.herald.consent
import data.herald.test_fixtures as fx

test_restriction_denies_every_purpose if {
	some purpose in ["marketing", "transactional", "support", "service"]
	vs := consent.verdicts with input as fx.patched({"action": {"purpose": purpose}, "target": {"contact": {"restricted": true}}})
	"consent.restricted" in fx.rules(vs)
}

test_restriction_is_not_overridable if {
	d := herald.decision with input as fx.patched({"target": {"contact": {"restricted": true}}})
	d.outcome == "deny"
	some r in d.reasons
	r.rule == "consent.restricted"
	r.overridable == false
}

test_objection_denies_marketing if {
	vs := consent.verdicts with input as fx.patched({"target": {"contact": {"objected": true}}})
	"consent.objected" in fx.rules(vs)
}

test_objection_denies_legitimate_interest if {
	vs := consent.verdicts with input as fx.patched({
		"action": {"purpose": "support"},
		"target": {"contact": {"objected": true, "consents": {"support": {"basis": "legitimate_interest", "source": "ticket", "at": "2026-03-01T00:00:00Z"}}}},
	})
	"consent.objected" in fx.rules(vs)
}

test_objection_keeps_contract_service if {
	vs := consent.verdicts with input as fx.patched({
		"action": {"purpose": "transactional"},
		"target": {"contact": {"objected": true, "consents": {"transactional": {"basis": "contract", "source": "order", "at": "2026-03-01T00:00:00Z"}}}},
	})
	not "consent.objected" in fx.rules(vs)
}

test_unmarked_contact_is_not_restricted if {
	vs := consent.verdicts with input as fx.base
	not "consent.restricted" in fx.rules(vs)
	not "consent.objected" in fx.rules(vs)
}
