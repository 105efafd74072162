# Consent: may this person be messaged for this purpose at all?
# Group and channel targets have no contact, so these rules do not apply to
# them. An opt-out always wins and can never be overridden by an approver.
package herald.consent

import data.herald.lib

cp := lib.params.consent

contact := lib.contact

purpose := input.action.purpose

applies if not lib.is_chat

opted_out if contact.opted_out == true

needs_consent if purpose in cp.consent_purposes

is_service if purpose in cp.service_purposes

# basis is the contact's recorded legal basis for this purpose, if any.
basis := b if {
	consents := contact.consents
	is_object(consents)
	b := consents[purpose]
	is_object(b)
}

# documented holds when the basis is one of bases and names where it came
# from and when it was given: an undocumented basis is no basis.
documented(bases) if {
	basis.basis in bases
	is_string(basis.source)
	basis.source != ""
	lib.is_time(basis.at)
}

# stale holds when an expiring basis (consent) is older than max_age_months.
stale if {
	basis.basis in cp.expiring_bases
	given := time.parse_rfc3339_ns(basis.at)
	time.add_date(given, 0, cp.max_age_months, 0) < lib.now_ns
}

# inbound_open holds while the contact's last message to the account is
# younger than the service window (24 h by default).
inbound_open if {
	lib.has_written
	last := time.parse_rfc3339_ns(contact.last_inbound_at)
	lib.now_ns - last <= ((cp.inbound_window_hours * 3600) * 1000000000)
}

verdicts contains {
	"rule": "consent.opted_out",
	"outcome": "deny",
	"overridable": false,
	"message": "the contact has opted out",
} if {
	applies
	opted_out
}

verdicts contains {
	"rule": "consent.missing",
	"outcome": "deny",
	"overridable": false,
	"message": sprintf("%s messages need consent or legitimate interest recorded with a source and a timestamp", [purpose]),
} if {
	applies
	not opted_out
	needs_consent
	not documented(cp.marketing_bases)
}

verdicts contains {
	"rule": "consent.stale",
	"outcome": "deny",
	"overridable": false,
	"message": sprintf("consent for %s is older than %v months", [purpose, cp.max_age_months]),
} if {
	applies
	not opted_out
	needs_consent
	documented(cp.marketing_bases)
	stale
}

verdicts contains {
	"rule": "consent.no_basis",
	"outcome": "deny",
	"overridable": false,
	"message": sprintf("%s messages need an inbound message within %v h or a recorded legal basis", [purpose, cp.inbound_window_hours]),
} if {
	applies
	not opted_out
	is_service
	not inbound_open
	not documented(cp.service_bases)
}

verdicts contains {
	"rule": "consent.unknown_purpose",
	"outcome": "deny",
	"overridable": false,
	"message": "the action's purpose is not one the consent policy knows",
} if {
	applies
	not opted_out
	not needs_consent
	not is_service
}

suggestions contains {"rule": "consent.stale", "message": "re-confirm consent with the contact before sending marketing"} if {
	some v in verdicts
	v.rule == "consent.stale"
}

suggestions contains {"rule": "consent.missing", "message": "record the contact's consent with its source and time first"} if {
	some v in verdicts
	v.rule == "consent.missing"
}

suggestions contains {"rule": "consent.no_basis", "message": "reply within the service window after the contact writes, or record a legal basis"} if {
	some v in verdicts
	v.rule == "consent.no_basis"
}
