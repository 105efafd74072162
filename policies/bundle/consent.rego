# Consent: may this person be messaged for this purpose at all?
# Group and channel targets have no contact, so these rules do not apply to
# them. An opt-out always wins and can never be overridden by an approver.
package herald.consent

import data.herald.lib

# contact is kept for bundles derived from this one; the rules below read
# lib.contact directly, one rule evaluation fewer per decision.
contact := lib.contact

applies if not lib.is_chat

opted_out if lib.contact.opted_out == true

needs_consent if input.action.purpose in lib.params.consent.consent_purposes

is_service if input.action.purpose in lib.params.consent.service_purposes

# basis is the contact's recorded legal basis for this purpose, if any.
basis := b if {
	consents := lib.contact.consents
	is_object(consents)
	b := consents[input.action.purpose]
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
	basis.basis in lib.params.consent.expiring_bases
	given := time.parse_rfc3339_ns(basis.at)
	time.add_date(given, 0, lib.params.consent.max_age_months, 0) < lib.now_ns
}

# inbound_open holds while the contact's last message to the account is
# younger than the service window (24 h by default).
inbound_open if {
	lib.has_written
	last := time.parse_rfc3339_ns(lib.contact.last_inbound_at)
	lib.now_ns - last <= ((lib.params.consent.inbound_window_hours * 3600) * 1000000000)
}

# documented_marketing and documented_service are documented(…) for the
# two lists the verdicts test, as rules so each is judged once per decision.
documented_marketing if documented(lib.params.consent.marketing_bases)

documented_service if documented(lib.params.consent.service_bases)

# checked holds for a person who has not opted out: the other consent rules
# only judge them.
checked if {
	applies
	not opted_out
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
	"message": sprintf("%s messages need consent or legitimate interest recorded with a source and a timestamp", [input.action.purpose]),
} if {
	needs_consent
	checked
	not documented_marketing
}

verdicts contains {
	"rule": "consent.stale",
	"outcome": "deny",
	"overridable": false,
	"message": sprintf("consent for %s is older than %v months", [input.action.purpose, lib.params.consent.max_age_months]),
} if {
	needs_consent
	checked
	documented_marketing
	stale
}

verdicts contains {
	"rule": "consent.no_basis",
	"outcome": "deny",
	"overridable": false,
	"message": sprintf("%s messages need an inbound message within %v h or a recorded legal basis", [input.action.purpose, lib.params.consent.inbound_window_hours]),
} if {
	is_service
	checked
	not inbound_open
	not documented_service
}

verdicts contains {
	"rule": "consent.unknown_purpose",
	"outcome": "deny",
	"overridable": false,
	"message": "the action's purpose is not one the consent policy knows",
} if {
	not needs_consent
	not is_service
	checked
}

# fixes are the suggestions for the verdicts a sender can remedy; one rule
# over the verdicts rather than one scan per suggestion.
fixes := {
	"consent.stale": "re-confirm consent with the contact before sending marketing",
	"consent.missing": "record the contact's consent with its source and time first",
	"consent.no_basis": "reply within the service window after the contact writes, or record a legal basis",
}

suggestions contains {"rule": v.rule, "message": fixes[v.rule]} if some v in verdicts
