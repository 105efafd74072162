// Package vaulttest starts a real Vault server for tests, the way rivertest
// helps River's users: Herald's Vault code is tested against Vault itself,
// never against a mock.
//
// The server runs in dev mode (in-memory storage, unsealed, KV v2 at
// "secret/") on a free 127.0.0.1 port with a random root token, with Transit
// enabled at "transit/". It is killed in t.Cleanup.
//
// The binary comes from $HERALD_VAULT_BIN or from scripts/vault-bin.sh,
// which builds Vault from the pinned tools/vault module on first use (about
// 10 minutes on 2 cores) and caches it; see docs/development.md. Tests never
// skip for a missing binary: they build it.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// startTimeout bounds how long a dev server may take to answer sys/health.
const startTimeout = 60 * time.Second

// Server is a running Vault dev server.
type Server struct {
	Addr   string      // "http://127.0.0.1:PORT"
	Token  string      // root token
	Client *api.Client // root client, for test setup (mounts, policies, tokens)

	t      testing.TB
	bin    string
	port   int
	dir    string
	mu     sync.Mutex // guards the process
	mu2    sync.Mutex // guards log
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
	paused bool
}

// Start starts a Vault dev server for the test and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), Token: "root-" + randHex(t, 12), dir: t.TempDir()}
	var err error
	for attempt := range 3 { // the free port may be taken between probe and bind
		if s.port, err = freePort(); err != nil {
			t.Fatalf("vaulttest: free port: %v", err)
		}
		if err = s.start(); err == nil {
			break
		}
		t.Logf("vaulttest: start attempt %d: %v", attempt+1, err)
	}
	if err != nil {
		t.Fatalf("vaulttest: start vault: %v\n%s", err, s.logs())
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server (resuming it first if paused). Dev mode keeps
// everything in memory: the data is gone.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the server and starts a new one on the same address with
// the same root token. Dev mode stores nothing: KV data, Transit keys,
// AppRoles and tokens other than the root token are LOST; to simulate an
// outage that keeps state, use Pause and Resume.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	if err := s.start(); err != nil {
		s.t.Fatalf("vaulttest: restart vault: %v\n%s", err, s.logs())
	}
}

// Pause freezes the server with SIGSTOP: its port still accepts TCP
// connections but nothing answers, like a hung or partitioned Vault. State
// is kept.
func (s *Server) Pause() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("vaulttest: SIGSTOP: %v", err)
	}
	s.paused = true
	if err := waitState(s.cmd.Process.Pid, true); err != nil {
		s.t.Fatalf("vaulttest: pause: %v", err)
	}
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("vaulttest: SIGCONT: %v", err)
	}
	s.paused = false
	if err := waitState(s.cmd.Process.Pid, false); err != nil {
		s.t.Fatalf("vaulttest: resume: %v", err)
	}
}

// Seal seals the server: every request gets 503 "Vault is sealed" until
// Unseal. State is kept.
func (s *Server) Seal() {
	s.t.Helper()
	if err := s.Client.Sys().Seal(); err != nil {
		s.t.Fatalf("vaulttest: seal: %v", err)
	}
}

// Unseal unseals the server with the unseal key the dev server printed at
// start-up.
func (s *Server) Unseal() {
	s.t.Helper()
	key := s.unsealKey()
	if key == "" {
		s.t.Fatalf("vaulttest: no unseal key in the dev server output:\n%s", s.logs())
	}
	st, err := s.Client.Sys().Unseal(key)
	if err != nil || st.Sealed {
		s.t.Fatalf("vaulttest: unseal: %v (sealed=%v)", err, st != nil && st.Sealed)
	}
}

// unsealKey finds "Unseal Key: …" in the dev server's banner.
func (s *Server) unsealKey() string {
	for _, line := range strings.Split(s.logs(), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "Unseal Key:"); ok {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	if s.paused {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func (s *Server) start() error {
	s.Addr = "http://127.0.0.1:" + strconv.Itoa(s.port)
	s.mu2.Lock()
	s.log = &bytes.Buffer{}
	s.mu2.Unlock()
	cmd := exec.Command(s.bin, "server", "-dev",
		"-dev-root-token-id="+s.Token,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(s.port),
		"-dev-no-store-token",
	)
	// A private HOME keeps the dev server away from ~/.vault-token, and
	// clearing VAULT_* keeps the developer's own Vault settings out.
	cmd.Env = append(cleanEnv(), "HOME="+s.dir, "VAULT_LOG_LEVEL=warn")
	cmd.Stdout = &syncWriter{mu: &s.mu2, w: s.log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.Timeout = 5 * time.Second
	cfg.MaxRetries = 0
	client, err := api.NewClient(cfg)
	if err != nil {
		s.stopLocked()
		return err
	}
	client.SetToken(s.Token)
	s.Client = client

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := waitHealthy(ctx, client, exited); err != nil {
		s.stopLocked()
		return err
	}
	if err := client.Sys().MountWithContext(ctx, "transit", &api.MountInput{Type: "transit"}); err != nil {
		s.stopLocked()
		return fmt.Errorf("enable transit: %w", err)
	}
	return nil
}

func waitHealthy(ctx context.Context, c *api.Client, exited <-chan struct{}) error {
	for {
		h, err := c.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed {
			return nil
		}
		select {
		case <-exited:
			return errors.New("vault exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("vault not healthy after %v: %v", startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) logs() string {
	s.mu2.Lock()
	defer s.mu2.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the Vault binary: $HERALD_VAULT_BIN, or the
// output of scripts/vault-bin.sh (which builds and caches it if needed).
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findBinary() })
	if binErr != nil {
		t.Fatalf("vaulttest: %v", binErr)
	}
	return binPath
}

func findBinary() (string, error) {
	if p := os.Getenv("HERALD_VAULT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("HERALD_VAULT_BIN: %w", err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "vault-bin.sh"))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/vault-bin.sh: %w\n%s", err, stderr.String())
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("scripts/vault-bin.sh printed %q: %w", p, err)
	}
	return p, nil
}

// repoRoot walks up from the working directory to Herald's go.mod (not the
// tools/vault one).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/heraldhq/herald\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/heraldhq/herald) not found above the working directory")
		}
		dir = parent
	}
}

// syncWriter serialises the server's output into the log buffer.
type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
