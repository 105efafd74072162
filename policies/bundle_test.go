package policies

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/open-policy-agent/opa/v1/ast"
)

func TestDefaultBundleFiles(t *testing.T) {
	b := DefaultBundle()
	for _, name := range []string{"decision", "consent", "quiet_hours", "frequency", "risk", "approval"} {
		for _, p := range []string{name + ".rego", name + "_test.rego"} {
			if len(b.Files[p]) == 0 {
				t.Errorf("default bundle lacks %s", p)
			}
		}
	}
	if len(b.Files["data.json"]) == 0 {
		t.Error("default bundle lacks data.json")
	}
}

func TestBundleHashStable(t *testing.T) {
	a, b := DefaultBundle(), DefaultBundle()
	if a.Hash() != b.Hash() || len(a.Hash()) != 64 {
		t.Fatalf("hash not stable: %s vs %s", a.Hash(), b.Hash())
	}
	// Map iteration order must not matter: rebuild the map in another order.
	c := Bundle{Files: map[string][]byte{}}
	keys := make([]string, 0, len(a.Files))
	for k := range a.Files {
		keys = append(keys, k)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		c.Files[keys[i]] = a.Files[keys[i]]
	}
	if c.Hash() != a.Hash() {
		t.Error("hash depends on map order")
	}
	changed := Bundle{Files: maps.Clone(a.Files)}
	changed.Files["data.json"] = append(bytes.Clone(a.Files["data.json"]), ' ')
	if changed.Hash() == a.Hash() {
		t.Error("hash ignores a content change")
	}
	// Moving bytes between path and content must change the hash.
	x := Bundle{Files: map[string][]byte{"ab": []byte("c")}}
	y := Bundle{Files: map[string][]byte{"a": []byte("bc")}}
	if x.Hash() == y.Hash() {
		t.Error("hash is ambiguous between path and content")
	}
}

func TestLoadBundleDirMatchesEmbedded(t *testing.T) {
	b, err := LoadBundleDir("bundle")
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash() != DefaultBundle().Hash() {
		t.Error("bundle dir and embedded bundle differ")
	}
	if _, err := LoadBundleDir(t.TempDir()); err == nil {
		t.Error("empty dir: want an error")
	}
}

func tarGz(t *testing.T, files map[string][]byte, extra ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, content []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		add("/"+p, c) // opa build writes leading slashes
	}
	for _, name := range extra {
		add(name, []byte("{}"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadBundleTarGz(t *testing.T) {
	want := DefaultBundle()
	b, err := ReadBundleTarGz(bytes.NewReader(tarGz(t, want.Files, ".manifest")))
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash() != want.Hash() {
		t.Errorf("tar.gz bundle differs: files %d vs %d", len(b.Files), len(want.Files))
	}
	if _, err := Compile(context.Background(), b); err != nil {
		t.Errorf("compile tar.gz bundle: %v", err)
	}

	if _, err := ReadBundleTarGz(bytes.NewReader(tarGz(t, map[string][]byte{"../evil.rego": []byte("package x")}))); err == nil ||
		!strings.Contains(err.Error(), "invalid path") {
		t.Errorf("path escaping the root: err %v", err)
	}
	if _, err := ReadBundleTarGz(strings.NewReader("not gzip")); err == nil {
		t.Error("garbage: want an error")
	}
}

func TestDataJSONMountsAtItsDirectory(t *testing.T) {
	b := Bundle{Files: map[string][]byte{
		"decision.rego": []byte(`package herald

decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": data.org.acme.score, "factors": []}}
`),
		"org/acme/data.json": []byte(`{"score": 7}`),
	}}
	e, err := Compile(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), realisticInput())
	if err != nil || d.Risk.Score != 7 {
		t.Errorf("score %d, err %v", d.Risk.Score, err)
	}
	b.Files["org/data.json"] = []byte(`{"acme": {"score": 8}}`)
	if _, err := Compile(context.Background(), b); err == nil {
		t.Error("conflicting data: want an error")
	}
}

// TestInputValueMatchesJSON keeps the hand-built Rego input identical to
// the Input's JSON, which is what docs/policy-input.md documents and what
// InputHash covers.
func TestInputValueMatchesJSON(t *testing.T) {
	full := realisticInput()
	full.Action.ScheduleAt = tp("2026-03-11T08:00:00Z")
	full.Account.FrozenUntil = tp("2026-03-09T08:00:00Z")
	full.Target.Members = 3
	full.Target.Contact.OptedOutAt = tp("2026-01-01T00:00:00.123456789Z")
	full.Target.Contact.LastInboundAt = tp("2026-03-10T11:00:00Z")
	full.Frequency.AccountLastColdAt = tp("2026-03-10T11:00:00Z")
	full.Frequency.ChatLastPostAt = tp("2026-03-10T11:00:00Z")
	full.Org.Params = map[string]any{"risk": map[string]any{"deny_at": 80, "ratio": 0.5}}
	empty := Input{Now: ts("2026-03-10T12:00:00Z"), Target: TargetInput{Contact: &ContactInput{}}}

	for name, in := range map[string]Input{"full": full, "realistic": realisticInput(), "empty": empty} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err := inputValue(in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("input value differs from JSON:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestInputHash(t *testing.T) {
	in := realisticInput()
	h1, err := InputHash(in)
	if err != nil {
		t.Fatal(err)
	}
	in2 := realisticInput()
	h2, _ := InputHash(in2)
	in2.Account.Sends24h++
	h3, _ := InputHash(in2)
	if h1 != h2 || h1 == h3 || len(h1) != 64 {
		t.Errorf("hashes %s %s %s", h1, h2, h3)
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	b := bundleWith(`decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}`)
	b.Files["decision_test.rego"] = []byte(`package herald_test

import data.herald

test_allows if herald.decision.outcome == "allow"

test_denies if {
	herald.decision.outcome == "deny"
}
`)
	rep, err := RunTests(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed != 1 || rep.Failed != 1 || rep.OK() || len(rep.Failures) != 1 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Failures[0]
	if f.Name != "data.herald_test.test_denies" || f.File != "decision_test.rego" || f.Line != 7 {
		t.Errorf("failure %+v", f)
	}
	if rep.Coverage != 100 {
		t.Errorf("coverage %.1f, want 100", rep.Coverage)
	}
}

// TestCanonicalMatchesJCS holds the fast canonical encoder to the reference:
// jcs.Transform of the Input's encoding/json bytes.
func TestCanonicalMatchesJCS(t *testing.T) {
	odd := realisticInput()
	odd.Actor.Principal = "quote\" back\\ tab\t nl\n ctl\x01 <&> é 😀 \u2028"
	odd.Action.Content.CapsRatio = 1.0 / 3
	odd.Account.BaselineDaily7d = 1e21
	odd.Target.Contact.Consents["😀"] = ConsentInput{Basis: "consent", Source: "s", At: ts("2026-01-01T00:00:00Z")}
	odd.Target.Contact.Consents["\uffff"] = ConsentInput{Basis: "consent", Source: "s", At: ts("2026-01-01T00:00:00Z")}
	odd.Org.Params = map[string]any{"b": []any{1, 2.5, "x", nil, true}, "a": map[string]any{"z": 1, "y": -0.0}}
	for name, in := range map[string]Input{"realistic": realisticInput(), "odd": odd} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := jcs.Transform(raw)
			if err != nil {
				t.Fatal(err)
			}
			v, err := inputValue(in)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := appendCanonical(&got, v); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("canonical JSON differs:\n got %s\nwant %s", got.Bytes(), want)
			}
		})
	}
}
