package herald

import "testing"

func TestStateMachine(t *testing.T) {
	legal := [][2]Status{
		{StatusReceived, StatusDecided}, {StatusDecided, StatusScheduled}, {StatusDecided, StatusDenied},
		{StatusDecided, StatusPendingApproval}, {StatusPendingApproval, StatusScheduled}, {StatusPendingApproval, StatusExpired},
		{StatusScheduled, StatusSending}, {StatusScheduled, StatusCancelled}, {StatusSending, StatusDelivered},
		{StatusSending, StatusUnknown}, {StatusSending, StatusScheduled}, {StatusUnknown, StatusScheduled}, {StatusDenied, StatusScheduled},
		{StatusScheduled, StatusScheduled}, // a send-time deferral
	}
	for _, m := range legal {
		if !CanTransition(m[0], m[1]) {
			t.Errorf("%s → %s must be legal", m[0], m[1])
		}
	}
	illegal := [][2]Status{
		{StatusReceived, StatusDelivered}, {StatusScheduled, StatusDelivered}, {StatusDelivered, StatusScheduled},
		{StatusCancelled, StatusScheduled}, {StatusDenied, StatusSending}, {StatusSending, StatusCancelled},
		{StatusReceived, StatusReceived},
	}
	for _, m := range illegal {
		if CanTransition(m[0], m[1]) {
			t.Errorf("%s → %s must be illegal", m[0], m[1])
		}
	}
	for _, s := range []Status{StatusDelivered, StatusFailed, StatusDenied, StatusCancelled, StatusExpired} {
		if !s.Terminal() {
			t.Errorf("%s must be terminal", s)
		}
	}
	for _, s := range []Status{StatusScheduled, StatusUnknown, StatusSending} {
		if s.Terminal() {
			t.Errorf("%s must not be terminal", s)
		}
	}
	if Status("lost").Valid() || !StatusUnknown.Valid() {
		t.Error("Valid is wrong")
	}
	if e := TransitionError(StatusDelivered, StatusScheduled); e.Code != CodeIllegalTransition {
		t.Errorf("code = %s", e.Code)
	}
}

func TestContactImportRowValidate(t *testing.T) {
	ok := ContactImportRow{ChatID: "@alice_b", Timezone: "Europe/Berlin", Language: "pt-BR", Purpose: "marketing", LegalBasis: "consent", Source: "form"}
	if fe := ok.Validate(1); len(fe) != 0 {
		t.Fatalf("valid row rejected: %v", fe)
	}
	bad := ContactImportRow{ChatID: "12 34", Timezone: "Mars/Base", Language: "english", Purpose: "spam", LegalBasis: "", Source: " "}
	fe := bad.Validate(7)
	if len(fe) != 6 {
		t.Fatalf("want 6 field errors, got %v", fe)
	}
	for _, f := range fe {
		if f.Row == nil || *f.Row != 7 {
			t.Fatalf("row not set: %+v", f)
		}
	}
}
