package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store/storetest"
)

const loginBotToken = "123456:login-bot-token"

// widgetQuery signs fields as the Telegram Login Widget does and returns
// the query its redirect carries.
func widgetQuery(org string, fields map[string]string, token string) string {
	q := url.Values{"org": {org}, "hash": {telegramtest.LoginWidgetHash(fields, token)}}
	for k, v := range fields {
		q.Set(k, v)
	}
	return q.Encode()
}

// TestTelegramSignIn: an invited person signs in with the Login Widget
// (the console hands its fields to POST /v1/auth/telegram), sees the pages
// their role allows, and is signed out on the next request once revoked.
// Forged widget data starts no session.
func TestTelegramSignIn(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	ctx := context.Background()
	c := e.client()
	if _, page := c.get("/signin?org=" + e.org.ID); strings.Contains(page, "telegram-widget.js") {
		t.Fatal("the widget is shown with no login bot configured")
	}
	if _, err := e.secrets.Put(ctx, "herald/login-bot", map[string]string{"token": loginBotToken, "username": "herald_login_bot"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	st, person := e.apiDo("POST", "/v1/people", e.keys[herald.RoleAdmin], map[string]any{"telegram_id": "4242", "name": "Olga",
		"roles": []map[string]string{{"role": herald.RoleApprover}}})
	if st != http.StatusCreated {
		t.Fatalf("invite = %d %v", st, person)
	}
	_, page := c.get("/signin?org=" + e.org.ID)
	if !strings.Contains(page, `src="https://telegram.org/js/telegram-widget.js?22"`) || !strings.Contains(page, `data-telegram-login="herald_login_bot"`) ||
		!strings.Contains(page, `data-auth-url="/signin/telegram?org=`+e.org.ID+`"`) {
		t.Fatalf("the sign-in page has no widget for the organisation:\n%s", page)
	}
	fields := map[string]string{"id": "4242", "first_name": "Olga", "auth_date": strconv.FormatInt(e.s.Now().Unix(), 10)}

	// Forged: the hash of another bot's token.
	res, _ := c.get("/signin/telegram?" + widgetQuery(e.org.ID, fields, "999:other"))
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged widget data = %d", res.StatusCode)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == "herald_console" && ck.Value != "" {
			t.Error("forged widget data started a session")
		}
	}
	// Not invited to this organisation: the same refusal.
	other, err := e.s.CreateOrg(ctx, "Other", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := e.client().get("/signin/telegram?" + widgetQuery(other.ID, fields, loginBotToken)); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in to an organisation that did not invite = %d", res.StatusCode)
	}

	res, body := c.get("/signin/telegram?" + widgetQuery(e.org.ID, fields, loginBotToken))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("widget sign-in = %d:\n%s", res.StatusCode, body)
	}
	sessionCookie(t, res)
	res, home := c.get("/")
	if res.StatusCode != http.StatusOK || !strings.Contains(home, "tg:4242") || !strings.Contains(home, `href="/approvals"`) {
		t.Fatalf("signed in with Telegram, / = %d:\n%s", res.StatusCode, home)
	}
	if strings.Contains(home, `href="/admin"`) {
		t.Error("an approver is shown Admin")
	}

	// Revoking the person ends the console session on the next request.
	if st, out := e.apiDo("DELETE", "/v1/people/"+person["id"].(string), e.keys[herald.RoleAdmin], nil); st != http.StatusOK && st != http.StatusNoContent {
		t.Fatalf("revoke person = %d %v", st, out)
	}
	if res, _ := c.get("/"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/signin") {
		t.Errorf("a revoked person's session answers %d", res.StatusCode)
	}
}
