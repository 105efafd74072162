package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

type person struct {
	ID         string     `json:"id"`
	TelegramID string     `json:"telegram_id"`
	Principal  string     `json:"principal"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Bindings   []binding  `json:"bindings"`
}

type binding struct {
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

type adminData struct {
	Accounts []account
	People   []person
	Bindings []binding
	Keys     []herald.APIKey
	Roles    []string
	// NewToken is a key just created: shown once, on this answer only.
	NewToken string
	NewKey   *herald.APIKey
}

// adminPage shows accounts (status, freeze), people and role bindings, and
// API keys (create — the token shown once — and revoke), each section only
// to those who may read it.
func (c *Console) adminPage(r *Request) {
	d, ok := c.adminData(r)
	if !ok {
		return
	}
	r.Render(http.StatusOK, "admin", "admin.title", "/admin", d)
}

func (c *Console) adminData(r *Request) (adminData, bool) {
	d := adminData{Roles: herald.Roles}
	var err error
	if d.Accounts, _, err = r.accounts(); err != nil {
		r.Fail(err)
		return d, false
	}
	if r.Can("roles", "read") {
		var people struct {
			People []person `json:"people"`
		}
		if err := r.API(http.MethodGet, "/v1/people", nil, &people); err != nil {
			r.Fail(err)
			return d, false
		}
		d.People = people.People
		var bs struct {
			Bindings []binding `json:"bindings"`
		}
		if err := r.API(http.MethodGet, "/v1/roles/bindings", nil, &bs); err != nil {
			r.Fail(err)
			return d, false
		}
		d.Bindings = bs.Bindings
	}
	if r.Can("keys", "read") {
		var keys struct {
			Keys []herald.APIKey `json:"keys"`
		}
		if err := r.API(http.MethodGet, "/v1/keys", nil, &keys); err != nil {
			r.Fail(err)
			return d, false
		}
		d.Keys = keys.Keys
	}
	if d.Accounts == nil && !r.Can("roles", "read") && !r.Can("keys", "read") {
		r.Fail(&Problem{Status: http.StatusForbidden, Code: "forbidden"})
		return d, false
	}
	return d, true
}

// createKey creates an API key through the API and shows its token once,
// in this answer only (never stored by the console, never in a redirect).
func (c *Console) createKey(r *Request) {
	body := map[string]string{"role": r.PostFormValue("role")}
	if v := strings.TrimSpace(r.PostFormValue("principal")); v != "" {
		body["principal"] = v
	}
	if v := strings.TrimSpace(r.PostFormValue("description")); v != "" {
		body["description"] = v
	}
	var out struct {
		Key   herald.APIKey `json:"key"`
		Token string        `json:"token"`
	}
	err := r.API(http.MethodPost, "/v1/keys", body, &out)
	d, ok := c.adminData(r)
	if !ok {
		return
	}
	if err != nil {
		var p *Problem
		if asProblem(err, &p) && p.Status == http.StatusBadRequest {
			r.RenderProblem(http.StatusBadRequest, "admin", "admin.title", "/admin", d, p)
			return
		}
		r.Fail(err)
		return
	}
	d.NewToken, d.NewKey = out.Token, &out.Key
	r.Render(http.StatusCreated, "admin", "admin.title", "/admin", d)
}

// revokeKey revokes a key through the API.
func (c *Console) revokeKey(r *Request) {
	if err := r.API(http.MethodDelete, "/v1/keys/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		r.Fail(err)
		return
	}
	r.Redirect("/admin?done=admin.revoked#keys")
}
