// Package storetest is the conformance suite every secrets.Store
// implementation passes: the Vault store against a real Vault server, the
// local store against a temporary directory. Holding both to one suite is
// what lets the embedded default and production behave the same.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/secrets"
)

// Run runs the suite. open returns the store under test; it may return the
// same store each time: every subtest uses its own path prefix.
func Run(t *testing.T, open func(t *testing.T) secrets.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s secrets.Store, prefix string)
	}{
		{"NotFound", testNotFound},
		{"PutGet", testPutGet},
		{"Versions", testVersions},
		{"CAS", testCAS},
		{"CASConcurrent", testCASConcurrent},
		{"DataIsCopied", testDataIsCopied},
		{"ErrorsDoNotLeak", testErrorsDoNotLeak},
		{"PseudonymizerRotation", testPseudonymizer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t), "storetest/"+randHex(t, 6)+"/"+tc.name)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// randHex returns n random bytes hex-encoded: unique paths and values that
// cannot appear in an error by chance.
func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func testNotFound(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	if _, err := s.Get(c, p+"/missing"); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetVersion(c, p+"/missing", 1); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("GetVersion(missing, 1) = %v, want ErrNotFound", err)
	}
	if _, err := s.Versions(c, p+"/missing"); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("Versions(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Put(c, p+"/one", map[string]string{"k": "v"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVersion(c, p+"/one", 7); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("GetVersion(one, 7) = %v, want ErrNotFound", err)
	}
}

func testPutGet(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	path := p + "/bot_token"
	want := map[string]string{"token": randHex(t, 16), "api_id": "12345"}
	before := time.Now().Add(-time.Minute)
	put, err := s.Put(c, path, want, secrets.NoCAS)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if put.Version != 1 || put.Path != path {
		t.Errorf("Put returned %v, want version 1 of %q", put, path)
	}
	got, err := s.Get(c, path)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Version != 1 || got.Path != path {
		t.Errorf("Get = %v, want version 1 of %q", got, path)
	}
	if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("UpdatedAt = %v, want about now", got.UpdatedAt)
	}
	if !equal(got.Data, want) {
		t.Errorf("Get data differs from what was put (fields %v)", got)
	}
}

func testVersions(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	path := p + "/session"
	var vals []string
	for i := 1; i <= 3; i++ {
		v := randHex(t, 8)
		vals = append(vals, v)
		put, err := s.Put(c, path, map[string]string{"blob": v}, secrets.NoCAS)
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		if put.Version != i {
			t.Fatalf("Put %d returned version %d", i, put.Version)
		}
	}
	cur, err := s.Versions(c, path)
	if err != nil || cur != 3 {
		t.Fatalf("Versions = %d, %v; want 3", cur, err)
	}
	latest, err := s.Get(c, path)
	if err != nil || latest.Version != 3 || latest.Data["blob"] != vals[2] {
		t.Fatalf("Get latest = %v, %v; want version 3 with the third value", latest, err)
	}
	for i, v := range vals {
		got, err := s.GetVersion(c, path, i+1)
		if err != nil {
			t.Fatalf("GetVersion %d: %v", i+1, err)
		}
		if got.Version != i+1 || got.Data["blob"] != v {
			t.Errorf("GetVersion %d = %v, wrong version or value", i+1, got)
		}
	}
}

func testCAS(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	path := p + "/cas"
	if _, err := s.Put(c, path, map[string]string{"a": "1"}, secrets.MustNotExist); err != nil {
		t.Fatalf("Put MustNotExist on a new path: %v", err)
	}
	if _, err := s.Put(c, path, map[string]string{"a": "2"}, secrets.MustNotExist); !errors.Is(err, secrets.ErrCASMismatch) {
		t.Fatalf("Put MustNotExist on an existing path = %v, want ErrCASMismatch", err)
	}
	if _, err := s.Put(c, path, map[string]string{"a": "2"}, 2); !errors.Is(err, secrets.ErrCASMismatch) {
		t.Fatalf("Put cas=2 at version 1 = %v, want ErrCASMismatch", err)
	}
	put, err := s.Put(c, path, map[string]string{"a": "2"}, 1)
	if err != nil || put.Version != 2 {
		t.Fatalf("Put cas=1 at version 1 = %v, %v; want version 2", put, err)
	}
	put, err = s.Put(c, path, map[string]string{"a": "3"}, secrets.NoCAS)
	if err != nil || put.Version != 3 {
		t.Fatalf("Put NoCAS = %v, %v; want version 3", put, err)
	}
	got, err := s.Get(c, path)
	if err != nil || got.Data["a"] != "3" {
		t.Fatalf("Get after CAS writes = %v, %v", got, err)
	}
}

func testCASConcurrent(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	path := p + "/race"
	if _, err := s.Put(c, path, map[string]string{"n": "0"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		wins, conflicts int
		others          []error
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(c, path, map[string]string{"n": fmt.Sprint(i + 1)}, 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, secrets.ErrCASMismatch):
				conflicts++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != writers-1 || len(others) > 0 {
		t.Fatalf("concurrent cas=1 writes: %d won, %d conflicted, other errors %v; want exactly one winner", wins, conflicts, others)
	}
	if cur, err := s.Versions(c, path); err != nil || cur != 2 {
		t.Fatalf("Versions after race = %d, %v; want 2", cur, err)
	}
}

func testDataIsCopied(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	path := p + "/copy"
	in := map[string]string{"k": "original"}
	if _, err := s.Put(c, path, in, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	in["k"] = "mutated input"
	got, err := s.Get(c, path)
	if err != nil {
		t.Fatal(err)
	}
	got.Data["k"] = "mutated output"
	again, err := s.Get(c, path)
	if err != nil {
		t.Fatal(err)
	}
	if again.Data["k"] != "original" {
		t.Fatalf("store shares maps with its callers: value is now %q", again.Data["k"])
	}
}

func testErrorsDoNotLeak(t *testing.T, s secrets.Store, p string) {
	c := ctx(t)
	path := p + "/leak"
	value := "leak-" + randHex(t, 16)
	if _, err := s.Put(c, path, map[string]string{"token": value}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(c, path, map[string]string{"token": value}, 5)
	if err == nil {
		t.Fatal("Put with a stale cas succeeded")
	}
	_, err2 := s.Put(c, path, map[string]string{"token": value}, secrets.MustNotExist)
	_, err3 := s.GetVersion(c, path, 9)
	for _, e := range []error{err, err2, err3} {
		if e != nil && strings.Contains(fmt.Sprintf("%v %+v %#v", e, e, e), value) {
			t.Errorf("error leaks the secret value: %v", e)
		}
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
