package storetest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestThrowawayCluster proves the fallback a fresh machine relies on: with
// no server configured or answering, the suite starts its own cluster. It
// runs the fallback explicitly (this machine may well have a server).
func TestThrowawayCluster(t *testing.T) {
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start throwaway cluster: %v", err)
	}
	dir := c.dir
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		c.stop()
		t.Fatal(err)
	}
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	conn.Close(ctx)
	c.stop()
	if err != nil || one != 1 {
		t.Fatalf("query on throwaway cluster: %d, %v", one, err)
	}
	if pingURL(c.url) == nil {
		t.Fatal("the cluster still answers after stop")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("the cluster directory was not removed")
	}
}
