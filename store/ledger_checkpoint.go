package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald/ledger"
)

// DefaultCheckpointPoll is how often CheckpointJob looks for orgs due a
// checkpoint: 1 s keeps the 10 s interval accurate to a tenth while costing
// one indexed query per second.
const DefaultCheckpointPoll = time.Second

// CheckpointJob signs checkpoints of every org's log on a schedule: when at
// least Entries entries (other than ledger.checkpoint entries) were
// appended since the org's latest checkpoint, or when any were and the
// latest is Interval old (or there is none). Defaults:
// ledger.DefaultCheckpointEntries and ledger.DefaultCheckpointIntervalSeconds.
//
// Run it on every replica: a checkpoint per (org, size) is stored once (the
// loser of a race discards its signature), so replicas only share the work.
// The zero value of every field but Logs works.
type CheckpointJob struct {
	Logs     *LedgerLogs
	Entries  int           // sign after this many new entries (default 1,000)
	Interval time.Duration // or when the oldest unsigned entry is this old (default 10 s)
	Poll     time.Duration // how often to look (default 1 s)
	Log      *slog.Logger
}

func (j *CheckpointJob) entries() int {
	if j.Entries > 0 {
		return j.Entries
	}
	return ledger.DefaultCheckpointEntries
}

func (j *CheckpointJob) interval() time.Duration {
	if j.Interval > 0 {
		return j.Interval
	}
	return ledger.DefaultCheckpointIntervalSeconds * time.Second
}

func (j *CheckpointJob) log() *slog.Logger {
	if j.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Log
}

// Run signs due checkpoints until ctx is cancelled; it returns nil then.
// Errors of one round are logged and retried at the next poll. Without a
// signer it returns an error at once.
func (j *CheckpointJob) Run(ctx context.Context) error {
	if j.Logs == nil || j.Logs.Signer == nil {
		return errors.New("ledger checkpoints: no signer configured")
	}
	poll := j.Poll
	if poll <= 0 {
		poll = DefaultCheckpointPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if n, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			j.log().Error("ledger checkpoints", "err", err, "signed", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce signs a checkpoint for every org that is due one and returns how
// many it signed. It carries on past one org's failure and returns the
// errors joined.
func (j *CheckpointJob) RunOnce(ctx context.Context) (int, error) {
	if j.Logs == nil || j.Logs.Signer == nil {
		return 0, errors.New("ledger checkpoints: no signer configured")
	}
	s := j.Logs.Store
	type head struct {
		org      string
		size     uint64
		lastSize uint64
		lastAt   *time.Time
	}
	rs, err := s.q.query(ctx, `SELECT h.org_id, h.seq,
			(SELECT c.size FROM ledger_checkpoints c WHERE c.org_id = h.org_id ORDER BY c.size DESC LIMIT 1),
			(SELECT c.created_at FROM ledger_checkpoints c WHERE c.org_id = h.org_id ORDER BY c.size DESC LIMIT 1)
		FROM ledger_heads h ORDER BY h.org_id`)
	if err != nil {
		return 0, fmt.Errorf("ledger checkpoints: read heads: %w", err)
	}
	var heads []head
	for rs.Next() {
		var (
			h        head
			seq      int64
			lastSize *int64
		)
		if err := rs.Scan(&h.org, &seq, &lastSize, &h.lastAt); err != nil {
			rs.Close()
			return 0, fmt.Errorf("ledger checkpoints: read heads: %w", err)
		}
		h.size = uint64(seq) + 1
		if lastSize != nil {
			h.lastSize = uint64(*lastSize)
		}
		heads = append(heads, h)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, fmt.Errorf("ledger checkpoints: read heads: %w", err)
	}
	signed := 0
	var errs []error
	now := s.Now()
	for _, h := range heads {
		if err := ctx.Err(); err != nil {
			return signed, err
		}
		// Only the checkpoint's own entry after it: nothing new.
		if h.size <= h.lastSize+1 && h.lastAt != nil {
			continue
		}
		n, err := s.pendingEntries(ctx, h.org, h.lastSize)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		due := n >= j.entries() || (n > 0 && (h.lastAt == nil || now.Sub(*h.lastAt) >= j.interval()))
		if !due {
			continue
		}
		var prev *LedgerCheckpoint
		if h.lastAt != nil {
			c, err := s.LedgerCheckpointAt(ctx, h.org, h.lastSize)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			prev = &c
		}
		cp, created, err := j.Logs.sign(ctx, h.org, prev)
		if err != nil {
			j.log().Error("ledger checkpoint", "org", h.org, "err", err)
			errs = append(errs, fmt.Errorf("org %q: %w", h.org, err))
			continue
		}
		if created {
			signed++
			j.log().Debug("ledger checkpoint signed", "org", h.org, "size", cp.Size, "key", cp.KeyID)
		}
	}
	return signed, errors.Join(errs...)
}
