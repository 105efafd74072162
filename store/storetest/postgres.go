// Package storetest gives tests a fresh, migrated Herald store on each
// supported database: SQLite in a temporary directory, and PostgreSQL in a
// throwaway database on the server HERALD_TEST_DATABASE_URL names, on a
// local server when one answers on 127.0.0.1:5432, or else on a throwaway
// cluster this package starts (and removes) itself.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the PostgreSQL server tests use. Each test gets its
// own database on it, dropped afterwards.
const EnvDatabaseURL = "HERALD_TEST_DATABASE_URL"

const defaultLocalURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	cluster    *throwawayCluster
)

// Main wraps testing.M: it runs the package's tests and then stops the
// throwaway PostgreSQL cluster, if this process started one. Use it from
// TestMain in every package that calls Postgres.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.stop()
	}
	os.Exit(code)
}

// PostgresURL returns the admin URL of a PostgreSQL server for tests,
// starting a throwaway cluster when none is configured or answering.
func PostgresURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverURL, serverErr = findOrStartServer() })
	if serverErr != nil {
		t.Fatalf("no PostgreSQL for tests: %v", serverErr)
	}
	return serverURL
}

func findOrStartServer() (string, error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		if err := pingURL(u); err != nil {
			return "", fmt.Errorf("%s=%s does not answer: %w", EnvDatabaseURL, redact(u), err)
		}
		return u, nil
	}
	if pingURL(defaultLocalURL) == nil {
		return defaultLocalURL, nil
	}
	c, err := startCluster()
	if err != nil {
		return "", fmt.Errorf("no server on 127.0.0.1:5432 and starting a throwaway cluster failed: %w", err)
	}
	cluster = c
	return c.url, nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable url)"
	}
	return p.Redacted()
}

func pingURL(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.Ping(ctx)
}

// NewDatabase creates an empty database on the test server and returns its
// URL; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := PostgresURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "herald_t_" + hex.EncodeToString(b)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse test server url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// throwawayCluster is a PostgreSQL cluster in a temporary directory on a
// random port, owned by an unprivileged user (initdb refuses root).
type throwawayCluster struct {
	dir, url, pgctl, owner string
}

func startCluster() (*throwawayCluster, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "herald-pg-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &throwawayCluster{dir: dir, pgctl: filepath.Join(bin, "pg_ctl")}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		if os.Geteuid() == 0 {
			// initdb and postgres refuse to run as root: run as the postgres
			// system user (created by Debian's package) instead.
			cmd = exec.Command("runuser", append([]string{"-u", c.owner, "--", filepath.Join(bin, name)}, args...)...)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
		}
		c.owner = u.Username
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, dir)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		return nil, err
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := pingURL(c.url); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *throwawayCluster) stop() {
	args := []string{"-D", filepath.Join(c.dir, "data"), "-m", "immediate", "stop"}
	cmd := exec.Command(c.pgctl, args...)
	if c.owner != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.owner, "--", c.pgctl}, args...)...)
	}
	_ = cmd.Run()
	_ = os.RemoveAll(c.dir)
}

// postgresBinDir finds Debian's PostgreSQL server binaries (the newest major version).
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found: install Debian's postgresql package (apt-get install -y postgresql)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
