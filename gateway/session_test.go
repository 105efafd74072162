package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store/storetest"
)

const loginBotToken = "5555:login-bot-token-for-the-widget-abcdefg"

// widget signs login data the way Telegram's Login Widget does.
func widget(fields map[string]string, botToken string) map[string]any {
	out := map[string]any{"hash": telegramtest.LoginWidgetHash(fields, botToken)}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

func TestTelegramLoginSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		if _, err := e.secrets.Put(ctx, "herald/login-bot", map[string]string{"token": loginBotToken}, secrets.NoCAS); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.EnsureRole(ctx, e.org.ID, "tg:777", herald.RoleOperator, "test"); err != nil {
			t.Fatal(err)
		}
		if err := e.authz.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		now := e.s.Now()
		fields := map[string]string{"id": "777", "first_name": "Ann", "username": "ann_ops", "auth_date": fmt.Sprint(now.Unix())}
		login := "/v1/auth/telegram?org=" + e.org.ID
		r := e.do("POST", login, "", widget(fields, loginBotToken))
		if r.status != 200 || r.str("principal") != "tg:777" || r.str("token") == "" {
			t.Fatalf("login = %d %s", r.status, r.raw)
		}
		session := r.str("token")
		sub := e.do("POST", "/v1/actions", session, e.sendReq("-1001", "transactional", "from a person"))
		if sub.status != http.StatusCreated || sub.str("action", "submitted_by") != "tg:777" {
			t.Fatalf("submit with a session = %d %s", sub.status, sub.raw)
		}
		if me := e.do("GET", "/v1/me", session, nil); me.str("principal") != "tg:777" {
			t.Fatalf("me = %s", me.raw)
		}
		// Bad logins: forged hash, stale auth_date, no role in the org, another org.
		forged := widget(fields, "9999:some-other-bot-token-xxxxxxxxxxxxxx")
		stale := map[string]string{"id": "777", "auth_date": fmt.Sprint(now.Add(-25 * time.Hour).Unix())}
		stranger := map[string]string{"id": "888", "auth_date": fmt.Sprint(now.Unix())}
		for name, body := range map[string]map[string]any{
			"forged": forged, "stale": widget(stale, loginBotToken), "no role": widget(stranger, loginBotToken),
		} {
			if got := e.do("POST", login, "", body); got.status != 401 || got.str("code") != "unauthenticated" {
				t.Errorf("%s login = %d %s", name, got.status, got.raw)
			}
		}
		tampered := widget(fields, loginBotToken)
		tampered["id"] = "778"
		if got := e.do("POST", login, "", tampered); got.status != 401 {
			t.Errorf("tampered id = %d", got.status)
		}
		if got := e.do("POST", "/v1/auth/telegram", "", widget(fields, loginBotToken)); got.status != 422 {
			t.Errorf("login without org = %d", got.status)
		}
		// A session expires; a tampered one never works.
		// Every spelling of the signature but the issued one is refused,
		// including those a lenient base64 decoder reads as the same bytes
		// (the last character's spare bits).
		sig := strings.LastIndexByte(session, '.') + 1
		const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		issued := strings.IndexByte(b64url, session[len(session)-1])
		for spare := 1; spare < 4; spare++ { // HS256: 32 bytes, 2 spare bits
			last := b64url[issued&^3+(issued+spare)&3]
			forged := session[:len(session)-1] + string(last)
			if got := e.do("GET", "/v1/me", forged, nil); got.status != 401 {
				t.Errorf("session with last character %q = %d", last, got.status)
			}
		}
		flipped := []byte(session)
		flipped[sig+3] ^= 1
		if got := e.do("GET", "/v1/me", string(flipped), nil); got.status != 401 {
			t.Errorf("tampered session = %d", got.status)
		}
		e.advance(16 * time.Minute)
		if got := e.do("GET", "/v1/me", session, nil); got.status != 401 {
			t.Errorf("expired session = %d %s", got.status, got.raw)
		}
	})
}
