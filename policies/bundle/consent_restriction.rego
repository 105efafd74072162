# Data-subject rights that stop processing: a completed restriction request
# (GDPR Art. 18) denies every purpose; an objection (Art. 21) denies every
# purpose resting on legitimate interest, and marketing whatever its basis
# (Art. 21(3): an objection to direct marketing is absolute). Both hold until
# the request is lifted, and neither can be overridden by an approver.
# Kept apart from consent.rego so the bundle's hot rules stay as they are.
package herald.consent

import data.herald.lib

restricted if lib.contact.restricted == true

objected if lib.contact.objected == true

verdicts contains {
	"rule": "consent.restricted",
	"outcome": "deny",
	"overridable": false,
	"message": "processing of the contact's data is restricted (data-subject request)",
} if {
	applies
	restricted
}

verdicts contains {
	"rule": "consent.objected",
	"outcome": "deny",
	"overridable": false,
	"message": sprintf("the contact objected to processing for %s (data-subject request)", [input.action.purpose]),
} if {
	applies
	objected
	objection_covers
}

objection_covers if basis.basis == "legitimate_interest"

objection_covers if input.action.purpose in lib.params.consent.consent_purposes
