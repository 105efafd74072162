package console

import (
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/policies"
)

// Policies (compliance officers): bundle versions, an editor that uploads
// a changed file as a new version (the API compiles it strictly and runs
// the bundle's own tests), the test report with failures at file:line, an
// impact preview of a version against recent decisions, activation and
// roll-back, and the organisation's parameters as a form. Everything goes
// through /v1/policies…; a version whose tests fail is stored "failed" and
// the API refuses to activate it, whatever the page shows.

type policyVersion struct {
	Version     int        `json:"version"`
	Hash        string     `json:"hash"`
	Status      string     `json:"status"`
	Author      string     `json:"author"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at"`
	ActivatedBy string     `json:"activated_by"`
	Tests       struct {
		Passed   int     `json:"passed"`
		Failed   int     `json:"failed"`
		Skipped  int     `json:"skipped"`
		Coverage float64 `json:"coverage"`
	} `json:"tests"`
}

// Activatable reports whether the activate control is shown: a stored
// version that passed its tests and is not already active.
func (v policyVersion) Activatable() bool { return v.Status != "failed" && v.Status != "active" }

type policyList struct {
	Active      *policyVersion  `json:"active"`
	DefaultHash string          `json:"default_hash"`
	Versions    []policyVersion `json:"versions"`
}

// policyBundle is GET /v1/policies/{version}.
type policyBundle struct {
	Version     int                 `json:"version"`
	Hash        string              `json:"hash"`
	Status      string              `json:"status"`
	Author      string              `json:"author"`
	CreatedAt   time.Time           `json:"created_at"`
	Report      policies.TestReport `json:"report"`
	ActivatedAt *time.Time          `json:"activated_at"`
	Files       map[string]string   `json:"files"`
}

// Activatable: see policyVersion.
func (b policyBundle) Activatable() bool { return b.Status != "failed" && b.Status != "active" }

// impactView is POST /v1/policies/{version}/impact, ordered for display.
type impactView struct {
	Evaluated   int
	Changed     int
	Errors      int
	Transitions []impactRow
}

type impactRow struct {
	From, To string
	Count    int
	Changed  bool
	Examples []string
}

type policiesData struct {
	List     policyList
	Base     string   // "default" or a version number
	File     string   // the file being edited
	Files    []string // the base's files
	Content  string
	Problems []fieldProblem
	Params   []paramField
	Bundle   *policyBundle // the version page
	Impact   *impactView
	CanWrite bool
}

// policiesPage lists the versions and shows the editor and the parameters.
func (c *Console) policiesPage(r *Request) {
	d, err := c.policiesData(r, r.URL.Query().Get("base"), r.URL.Query().Get("file"), nil)
	if err != nil {
		r.Fail(err)
		return
	}
	r.Render(http.StatusOK, "policies", "policies.title", "/policies", d)
}

func (c *Console) policiesData(r *Request, base, file string, content *string) (policiesData, error) {
	d := policiesData{CanWrite: r.Can("policies", "write")}
	if err := r.API(http.MethodGet, "/v1/policies", nil, &d.List); err != nil {
		return d, err
	}
	if d.CanWrite {
		files, b, err := c.baseFiles(r, base, d.List)
		if err != nil {
			return d, err
		}
		d.Base, d.Files = b, slices.Sorted(maps.Keys(files))
		if _, ok := files[file]; !ok {
			file = "data.json"
			if _, ok := files[file]; !ok && len(d.Files) > 0 {
				file = d.Files[0]
			}
		}
		d.File, d.Content = file, files[file]
		if content != nil {
			d.Content = *content
		}
	}
	params, err := c.paramFields(r)
	if err != nil {
		return d, err
	}
	d.Params = params
	return d, nil
}

// baseFiles returns the files an edit starts from: a stored version, or
// the built-in default bundle (the library's, not the database's). With no
// base named, the active version, else the default.
func (c *Console) baseFiles(r *Request, base string, l policyList) (map[string]string, string, error) {
	if base == "" && l.Active != nil {
		base = strconv.Itoa(l.Active.Version)
	}
	if v, err := strconv.Atoi(base); err == nil && v > 0 {
		var b policyBundle
		if err := r.API(http.MethodGet, "/v1/policies/"+strconv.Itoa(v), nil, &b); err != nil {
			return nil, "", err
		}
		return b.Files, base, nil
	}
	files := map[string]string{}
	for k, v := range policies.DefaultBundle().Files {
		files[k] = string(v)
	}
	return files, "default", nil
}

// policiesUpload stores the base bundle with one file replaced as a new
// version: the API compiles it (syntax errors at file:line) and runs its
// tests (failures listed on the version's page).
func (c *Console) policiesUpload(r *Request) {
	base, file, content := r.PostFormValue("base"), r.PostFormValue("file"), strings.ReplaceAll(r.PostFormValue("content"), "\r\n", "\n")
	if !utf8.ValidString(content) || strings.ContainsRune(content, 0) {
		d, err := c.policiesData(r, base, file, &content)
		if err != nil {
			r.Fail(err)
			return
		}
		r.RenderProblem(http.StatusBadRequest, "policies", "policies.title", "/policies", d,
			&Problem{Status: http.StatusBadRequest, Code: "invalid_encoding", Title: "Invalid encoding", Detail: "the file holds invalid UTF-8 or a NUL byte"})
		return
	}
	var l policyList
	if err := r.API(http.MethodGet, "/v1/policies", nil, &l); err != nil {
		r.Fail(err)
		return
	}
	files, _, err := c.baseFiles(r, base, l)
	if err != nil {
		r.Fail(err)
		return
	}
	if _, ok := files[file]; !ok {
		r.Fail(&Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Not Found", Detail: "no such file in the base bundle"})
		return
	}
	files[file] = content
	var out policyBundle
	err = r.API(http.MethodPost, "/v1/policies", map[string]any{"files": files}, &out)
	if err == nil {
		r.Redirect("/policies/" + strconv.Itoa(out.Version) + "?done=policies.uploaded")
		return
	}
	var p *Problem
	if !asProblem(err, &p) || p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden || p.Status == http.StatusServiceUnavailable {
		r.Fail(err)
		return
	}
	d, derr := c.policiesData(r, base, file, &content)
	if derr != nil {
		r.Fail(derr)
		return
	}
	d.Problems = fieldProblems(p)
	r.RenderProblem(p.Status, "policies", "policies.title", "/policies", d, p)
}

func versionOf(r *Request) (string, bool) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		r.Fail(&Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Not Found", Detail: "no such policy version"})
		return "", false
	}
	return strconv.Itoa(v), true
}

// policyVersionPage shows one version: status, test report, files, and the
// impact preview and activate controls.
func (c *Console) policyVersionPage(r *Request) { c.showVersion(r, nil, nil) }

func (c *Console) showVersion(r *Request, im *impactView, p *Problem) {
	v, ok := versionOf(r)
	if !ok {
		return
	}
	d := policiesData{CanWrite: r.Can("policies", "write"), Impact: im}
	var b policyBundle
	if err := r.API(http.MethodGet, "/v1/policies/"+v, nil, &b); err != nil {
		r.Fail(err)
		return
	}
	d.Bundle = &b
	d.Files = slices.Sorted(maps.Keys(b.Files))
	status := http.StatusOK
	if p != nil {
		status = p.Status
		d.Problems = fieldProblems(p)
		r.RenderProblem(status, "policy", "policies.version", "/policies", d, p)
		return
	}
	r.Render(status, "policy", "policies.version", "/policies", d)
}

// policyImpact replays recent decisions against the version.
func (c *Console) policyImpact(r *Request) {
	v, ok := versionOf(r)
	if !ok {
		return
	}
	var rep policies.Impact
	if err := r.API(http.MethodPost, "/v1/policies/"+v+"/impact", nil, &rep); err != nil {
		var p *Problem
		if asProblem(err, &p) && p.Status == http.StatusUnprocessableEntity {
			c.showVersion(r, nil, p)
			return
		}
		r.Fail(err)
		return
	}
	im := &impactView{Evaluated: rep.Evaluated, Changed: rep.Changed, Errors: rep.Errors}
	for t, n := range rep.Transitions {
		from, to, _ := strings.Cut(t, "→")
		im.Transitions = append(im.Transitions, impactRow{From: from, To: to, Count: n, Changed: from != to, Examples: rep.Examples[t]})
	}
	// changes first, the largest first; then what stayed the same
	sort.Slice(im.Transitions, func(i, j int) bool {
		a, b := im.Transitions[i], im.Transitions[j]
		if a.Changed != b.Changed {
			return a.Changed
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.From+a.To < b.From+b.To
	})
	c.showVersion(r, im, nil)
}

// policyActivate activates the version (an older one: roll back). The API
// refuses a version whose tests failed (409 policy_tests_failed).
func (c *Console) policyActivate(r *Request) {
	v, ok := versionOf(r)
	if !ok {
		return
	}
	if err := r.API(http.MethodPost, "/v1/policies/"+v+"/activate", nil, nil); err != nil {
		var p *Problem
		if asProblem(err, &p) && (p.Status == http.StatusConflict || p.Status == http.StatusUnprocessableEntity) {
			c.showVersion(r, nil, p)
			return
		}
		r.Fail(err)
		return
	}
	r.Redirect("/policies?done=policies.activated")
}

// paramField is one leaf of the parameters as a form field.
type paramField struct {
	Path     string // slash-separated (keys may hold dots): "quiet_hours/start"
	Kind     string // bool, number, string, list
	Value    string // the effective value as text
	Default  string
	Override bool
	Error    string
}

func (c *Console) paramFields(r *Request) ([]paramField, error) {
	var out struct {
		Overrides map[string]any `json:"overrides"`
		Defaults  map[string]any `json:"defaults"`
	}
	if err := r.API(http.MethodGet, "/v1/policies/params", nil, &out); err != nil {
		return nil, err
	}
	var fields []paramField
	var walk func(prefix string, def, ov map[string]any)
	walk = func(prefix string, def, ov map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(def)) {
			p := strings.TrimPrefix(prefix+"/"+k, "/")
			sub, _ := ov[k].(map[string]any)
			if dm, ok := def[k].(map[string]any); ok {
				walk(p, dm, sub)
				continue
			}
			kind, dv := paramText(def[k])
			f := paramField{Path: p, Kind: kind, Value: dv, Default: dv}
			if v, ok := ov[k]; ok {
				_, f.Value = paramText(v)
				f.Override = true
			}
			fields = append(fields, f)
		}
	}
	walk("", out.Defaults, out.Overrides)
	return fields, nil
}

func paramText(v any) (kind, text string) {
	switch x := v.(type) {
	case bool:
		return "bool", strconv.FormatBool(x)
	case float64:
		return "number", strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return "string", x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			_, s := paramText(e)
			parts = append(parts, s)
		}
		return "list", strings.Join(parts, ", ")
	}
	return "string", ""
}

// policyParams saves the parameters form: a field that differs from the
// bundle's default becomes an override; values are parsed by the default's
// type here (a number field that is not a number is an error on the
// form), and the API validates again.
func (c *Console) policyParams(r *Request) {
	fields, err := c.paramFields(r)
	if err != nil {
		r.Fail(err)
		return
	}
	overrides := map[string]any{}
	bad := false
	for i := range fields {
		f := &fields[i]
		raw := strings.TrimSpace(r.PostFormValue("p." + f.Path))
		if f.Kind == "bool" {
			raw = strconv.FormatBool(raw == "true")
		}
		if _, sent := r.PostForm["p."+f.Path]; !sent {
			raw = f.Value // a field the form did not carry keeps its value
		}
		if !utf8.ValidString(raw) || strings.ContainsRune(raw, 0) {
			f.Value, f.Error, bad = "", "policies.params.bad_text", true
			continue
		}
		f.Value = raw
		if raw == f.Default {
			continue
		}
		var v any
		switch f.Kind {
		case "bool":
			v = raw == "true"
		case "number":
			n, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				f.Error, bad = "policies.params.bad_number", true
				continue
			}
			v = n
		case "list":
			items := []any{}
			for _, s := range strings.Split(raw, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
			v = items
		default:
			v = raw
		}
		setPath(overrides, strings.Split(f.Path, "/"), v)
	}
	d := policiesData{CanWrite: r.Can("policies", "write"), Params: fields}
	if bad {
		if err := r.API(http.MethodGet, "/v1/policies", nil, &d.List); err != nil {
			r.Fail(err)
			return
		}
		r.RenderProblem(http.StatusUnprocessableEntity, "policy_params", "policies.params", "/policies", d,
			&Problem{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Title: "Unprocessable Entity", Detail: r.T("policies.params.fix")})
		return
	}
	if err := r.API(http.MethodPut, "/v1/policies/params", map[string]any{"overrides": overrides}, nil); err != nil {
		var p *Problem
		if asProblem(err, &p) && p.Status == http.StatusUnprocessableEntity {
			d.Problems = fieldProblems(p)
			r.RenderProblem(p.Status, "policy_params", "policies.params", "/policies", d, p)
			return
		}
		r.Fail(err)
		return
	}
	r.Redirect("/policies/params?done=policies.params.saved")
}

// policyParamsPage shows the parameters form alone.
func (c *Console) policyParamsPage(r *Request) {
	fields, err := c.paramFields(r)
	if err != nil {
		r.Fail(err)
		return
	}
	r.Render(http.StatusOK, "policy_params", "policies.params", "/policies", policiesData{CanWrite: r.Can("policies", "write"), Params: fields})
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}
