package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Cluster is a PostgreSQL cluster of the test's own, for tests that stop or
// restart the server under load: they must never do that to the shared one.
type Cluster struct {
	c *throwawayCluster
}

// NewCluster starts a throwaway PostgreSQL cluster (Debian's server
// binaries), removed when the test ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start a throwaway PostgreSQL cluster: %v", err)
	}
	t.Cleanup(c.stop)
	return &Cluster{c: c}
}

// NewDatabase creates an empty database on the cluster and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.c.url)
	if err != nil {
		t.Fatalf("connect to throwaway cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(c.c.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Restart restarts the server as an operator would (pg_ctl restart -m fast:
// open connections are terminated, the server comes back on the same port)
// and returns once it accepts connections again.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	// -l: without a log file the server would hold the output pipe open.
	args := []string{"-D", filepath.Join(c.c.dir, "data"), "-l", filepath.Join(c.c.dir, "log"), "-m", "fast", "-w", "restart"}
	cmd := exec.Command(c.c.pgctl, args...)
	if c.c.owner != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.c.owner, "--", c.c.pgctl}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl restart: %v: %s", err, out)
	}
	if err := pingURL(c.c.url); err != nil {
		t.Fatalf("the restarted cluster does not answer: %v", err)
	}
}

// String names the cluster for logs (its URL has no password).
func (c *Cluster) String() string { return fmt.Sprintf("throwaway cluster %s", c.c.url) }
