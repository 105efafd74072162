package herald.consent_test

import data.herald.consent
import data.herald.test_fixtures as fx

test_documented_consent_allows_marketing if {
	count(consent.verdicts) == 0 with input as fx.base
}

test_opt_out_denies_and_is_final if {
	vs := consent.verdicts with input as fx.patched({"target": {"contact": {"opted_out": true}}})
	fx.rules(vs) == {"consent.opted_out"}
	some v in vs
	v.outcome == "deny"
	v.overridable == false
}

test_opt_out_denies_service_messages_too if {
	vs := consent.verdicts with input as fx.patched({
		"action": {"purpose": "transactional"},
		"target": {"contact": {"opted_out": true, "last_inbound_at": "2026-03-10T11:00:00Z"}},
	})
	fx.rules(vs) == {"consent.opted_out"}
}

test_marketing_without_consent_is_missing if {
	inp := json.patch(fx.base, [{"op": "replace", "path": "/target/contact/consents", "value": {}}])
	vs := consent.verdicts with input as inp
	fx.rules(vs) == {"consent.missing"}
	s := consent.suggestions with input as inp
	count(s) == 1
}

test_marketing_with_null_consents_is_missing if {
	fx.rules(consent.verdicts) == {"consent.missing"} with input as fx.patched({"target": {"contact": {"consents": null}}})
}

test_unknown_person_is_missing if {
	inp := object.union(object.remove(fx.base, ["target"]), {"target": {"chat_id": "c-9", "type": "user"}})
	fx.rules(consent.verdicts) == {"consent.missing"} with input as inp
}

test_consent_without_source_is_missing if {
	fx.rules(consent.verdicts) == {"consent.missing"} with input as fx.patched({"target": {"contact": {"consents": {"marketing": {"source": ""}}}}})
}

test_consent_without_timestamp_is_missing if {
	fx.rules(consent.verdicts) == {"consent.missing"} with input as fx.patched({"target": {"contact": {"consents": {"marketing": {"at": "0001-01-01T00:00:00Z"}}}}})
}

test_contract_is_no_basis_for_marketing if {
	fx.rules(consent.verdicts) == {"consent.missing"} with input as fx.patched({"target": {"contact": {"consents": {"marketing": {"basis": "contract"}}}}})
}

test_legitimate_interest_allows_marketing if {
	count(consent.verdicts) == 0 with input as fx.patched({"target": {"contact": {"consents": {"marketing": {"basis": "legitimate_interest", "at": "2020-01-01T00:00:00Z"}}}}})
}

test_consent_older_than_24_months_is_stale if {
	inp := fx.patched({"target": {"contact": {"consents": {"marketing": {"at": "2024-03-09T12:00:00Z"}}}}})
	fx.rules(consent.verdicts) == {"consent.stale"} with input as inp
	some s in consent.suggestions with input as inp
	s.message == "re-confirm consent with the contact before sending marketing"
}

test_consent_just_under_24_months_is_fresh if {
	count(consent.verdicts) == 0 with input as fx.patched({"target": {"contact": {"consents": {"marketing": {"at": "2024-03-11T12:00:00Z"}}}}})
}

test_org_can_extend_consent_age if {
	count(consent.verdicts) == 0 with input as fx.patched({
		"target": {"contact": {"consents": {"marketing": {"at": "2024-03-09T12:00:00Z"}}}},
		"org": {"params": {"consent": {"max_age_months": 36}}},
	})
}

test_transactional_within_inbound_window if {
	count(consent.verdicts) == 0 with input as fx.patched({
		"action": {"purpose": "transactional"},
		"target": {"contact": {"consents": {}, "last_inbound_at": "2026-03-09T13:00:00Z"}},
	})
}

test_support_after_window_without_basis if {
	inp := fx.patched({
		"action": {"purpose": "support"},
		"target": {"contact": {"consents": {}, "last_inbound_at": "2026-03-09T06:00:00Z"}},
	})
	fx.rules(consent.verdicts) == {"consent.no_basis"} with input as inp
	count(consent.suggestions) == 1 with input as inp
}

test_service_with_contract_basis if {
	count(consent.verdicts) == 0 with input as fx.patched({
		"action": {"purpose": "service"},
		"target": {"contact": {"consents": {"service": {"basis": "contract", "source": "terms_v3", "at": "2025-01-01T00:00:00Z"}}}},
	})
}

test_org_can_widen_inbound_window if {
	count(consent.verdicts) == 0 with input as fx.patched({
		"action": {"purpose": "support"},
		"target": {"contact": {"consents": {}, "last_inbound_at": "2026-03-09T06:00:00Z"}},
		"org": {"params": {"consent": {"inbound_window_hours": 48}}},
	})
}

test_unknown_purpose_is_denied if {
	fx.rules(consent.verdicts) == {"consent.unknown_purpose"} with input as fx.patched({"action": {"purpose": "newsletter"}})
}

test_channels_have_no_consent_rules if {
	count(consent.verdicts) == 0 with input as fx.channel
	count(consent.verdicts) == 0 with input as object.union(fx.channel, {"target": {"type": "group"}})
}
