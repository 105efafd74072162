package herald.approval_test

import data.herald.approval
import data.herald.test_fixtures as fx

test_no_trigger_no_stage if {
	count(approval.verdicts) == 0 with input as fx.base
	approval.stages == [] with input as fx.base
}

test_large_channel if {
	inp := object.union(fx.channel, {"target": {"members": 12000}})
	{v.rule | some v in approval.verdicts with input as inp} == {"approval.channel_size"}
	approval.stages == [{"stage": 1, "role": "approver", "mode": "any"}] with input as inp
}

test_large_broadcast_needs_two_stages if {
	inp := fx.patched({"action": {"recipients": 5000}})
	approval.stages == [
		{"stage": 1, "role": "approver", "mode": "any"},
		{"stage": 2, "role": "compliance_officer", "mode": "any"},
	] with input as inp
}

test_risk_band if {
	inp := fx.patched({"account": {"kind": "user", "age_days": 3}})
	{v.rule | some v in approval.verdicts with input as inp} == {"approval.risk"}
	approval.stages == [{"stage": 1, "role": "compliance_officer", "mode": "any"}] with input as inp
}

test_triggers_combine_in_role_order if {
	inp := object.union(fx.channel, {"target": {"members": 12000}, "account": {"age_days": 3}, "action": {"content": {"links": 1, "shortened_links": 1}}})
	approval.stages == [
		{"stage": 1, "role": "approver", "mode": "any"},
		{"stage": 2, "role": "compliance_officer", "mode": "any"},
	] with input as inp
}

test_empty_roles_fall_back if {
	inp := fx.patched({"action": {"recipients": 5000}, "org": {"params": {"approval": {"roles": {"approval.broadcast_size": []}}}}})
	approval.stages == [{"stage": 1, "role": "compliance_officer", "mode": "any"}] with input as inp
}

test_custom_roles_and_modes if {
	inp := fx.patched({"action": {"recipients": 5000}, "org": {"params": {"approval": {
		"roles": {"approval.broadcast_size": ["legal", "approver"]},
		"modes": {"legal": "all"},
	}}}})
	approval.stages == [
		{"stage": 1, "role": "approver", "mode": "any"},
		{"stage": 2, "role": "legal", "mode": "all"},
	] with input as inp
}
