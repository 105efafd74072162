package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/local"
	"github.com/heraldhq/herald/secrets/vault"
	"github.com/heraldhq/herald/store"
)

// secretsConfig selects and tunes the secret store.
type secretsConfig struct {
	VaultAddr, VaultToken, VaultRoleID, VaultSecretID, VaultWrappedSecretID string
	VaultKVMount, VaultTransitMount, VaultSigningKey                        string
	RotateSigningKey, RotatePepper, KeyRefresh                              time.Duration
	Rotator                                                                 bool
}

func secretsFlags(fs *pflag.FlagSet, c *secretsConfig) {
	secretsStoreFlags(fs, c)
	fs.DurationVar(&c.RotateSigningKey, "rotate-signing-key", 90*24*time.Hour, "rotate the checkpoint signing key this often (0 = never); old checkpoints keep verifying")
	fs.DurationVar(&c.RotatePepper, "rotate-pepper", 180*24*time.Hour, "rotate each organisation's pseudonymisation pepper this often (0 = never)")
	fs.DurationVar(&c.KeyRefresh, "key-refresh", 30*time.Second, "how often to pick up a signing key rotated elsewhere")
	fs.BoolVar(&c.Rotator, "rotator", true, "run scheduled rotations in this process (enable on exactly one replica)")
}

// secretsStoreFlags are the flags that say where secrets are (Vault or the
// local file): all a one-shot command (secrets put|rotate, orgs delete)
// needs. The schedules above are the server's, so those commands' --help
// does not list them.
func secretsStoreFlags(fs *pflag.FlagSet, c *secretsConfig) {
	fs.StringVar(&c.VaultAddr, "vault-addr", "", "Vault address; empty keeps secrets in the encrypted file in --data-dir")
	fs.StringVar(&c.VaultToken, "vault-token", "", "Vault token (prefer HERALD_VAULT_TOKEN or AppRole)")
	fs.StringVar(&c.VaultRoleID, "vault-role-id", "", "AppRole role_id")
	fs.StringVar(&c.VaultSecretID, "vault-secret-id", "", "AppRole secret_id")
	fs.StringVar(&c.VaultWrappedSecretID, "vault-wrapped-secret-id", "", "response-wrapping token holding the AppRole secret_id")
	fs.StringVar(&c.VaultKVMount, "vault-kv-mount", vault.DefaultKVMount, "KV v2 mount for account secrets and the pepper")
	fs.StringVar(&c.VaultTransitMount, "vault-transit-mount", vault.DefaultTransitMount, "Transit mount for the checkpoint signing key")
	fs.StringVar(&c.VaultSigningKey, "vault-signing-key", "herald-checkpoints", "Transit Ed25519 key that signs ledger checkpoints (it never leaves Vault)")
}

// ledgerSignerName names the checkpoint key in signed notes.
const ledgerSignerName = "herald/ledger"

// signingKey is the checkpoint key, in Vault Transit or in the local store.
type signingKey struct {
	signer func(ctx context.Context) (note.Signer, error)
	rotate func(ctx context.Context) (int, int, error)
	pubs   func(ctx context.Context) (map[int]ed25519.PublicKey, error)
}

// secretBackend is everything Herald keeps secret, wired once.
type secretBackend struct {
	Store  *secrets.CachedStore
	Signer *secrets.RotatingSigner
	Pepper secrets.Pseudonymizer
	key    signingKey
	close  func()
}

func openSecretBackend(ctx context.Context, c *config, log *slog.Logger) (*secretBackend, error) {
	b := &secretBackend{close: func() {}}
	var raw secrets.Store
	if c.Secrets.VaultAddr == "" {
		st, err := local.Open(c.DataDir)
		if err != nil {
			return nil, err
		}
		raw = st
		k := local.SigningKey{Store: st, Path: "herald/ledger/checkpoint-key", Name: ledgerSignerName}
		b.key = signingKey{
			signer: func(ctx context.Context) (note.Signer, error) { return k.Signer(ctx) },
			rotate: k.Rotate, pubs: k.PublicKeys,
		}
	} else {
		var auth vault.Auth = vault.TokenAuth{Token: c.Secrets.VaultToken}
		if c.Secrets.VaultRoleID != "" {
			auth = &vault.AppRoleAuth{RoleID: c.Secrets.VaultRoleID, SecretID: c.Secrets.VaultSecretID, WrappedSecretID: c.Secrets.VaultWrappedSecretID}
		}
		cl, err := vault.Open(ctx, vault.Config{Address: c.Secrets.VaultAddr, Auth: auth, KVMount: c.Secrets.VaultKVMount,
			TransitMount: c.Secrets.VaultTransitMount, Logger: log, WrapTransport: traceVault})
		if err != nil {
			return nil, fmt.Errorf("open Vault: %w", err)
		}
		raw, b.close = cl, func() { _ = cl.Close() }
		k := vault.TransitSigningKey{Client: cl, Key: c.Secrets.VaultSigningKey, Name: ledgerSignerName}
		if err := k.Ensure(ctx); err != nil {
			cl.Close()
			return nil, fmt.Errorf("ensure Transit signing key: %w", err)
		}
		b.key = signingKey{
			signer: func(ctx context.Context) (note.Signer, error) { return k.Signer(ctx) },
			rotate: k.Rotate, pubs: k.PublicKeys,
		}
	}
	b.Store = secrets.Cached(raw, secrets.DefaultCacheTTL)
	b.Pepper = secrets.Pseudonymizer{Store: b.Store}
	s, vkeys, err := b.currentSigner(ctx)
	if err != nil {
		b.close()
		return nil, err
	}
	b.Signer = secrets.NewRotatingSigner(s, vkeys)
	return b, nil
}

// currentSigner reads the latest signing key version and the verifier keys
// of all versions, current first.
func (b *secretBackend) currentSigner(ctx context.Context) (note.Signer, []string, error) {
	signer, err := b.key.signer(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger signing key: %w", err)
	}
	pubs, err := b.key.pubs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger public keys: %w", err)
	}
	byVersion, err := secrets.VerifierKeys(ledgerSignerName, pubs)
	if err != nil {
		return nil, nil, err
	}
	versions := make([]int, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(versions)))
	vkeys := make([]string, 0, len(versions))
	for _, v := range versions {
		vkeys = append(vkeys, byVersion[v])
	}
	return signer, vkeys, nil
}

// rotator schedules the rotations: the checkpoint key (the new version
// signs from then on, old checkpoints keep verifying with the old key) and
// each organisation's pepper (old refs stay resolvable through their
// version). Every rotation is a secret.rotated ledger entry, never a value.
func (b *secretBackend) rotator(ctx context.Context, c *config, s *store.Store, log *slog.Logger) (*secrets.Rotator, error) {
	r := &secrets.Rotator{
		OnError: func(_ context.Context, secret string, err error) {
			log.Error("secret rotation failed", "secret", secret, "err", err)
		},
		OnRotate: func(ctx context.Context, ev secrets.RotationEvent) {
			orgs, err := s.OrgIDs(ctx)
			if err != nil {
				log.Error("record rotation", "err", err)
				return
			}
			for _, org := range orgs {
				if ev.Secret != "ledger-signing-key" && ev.Secret != "pepper/"+org {
					continue
				}
				err := s.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.AppendLedger(ctx, org, store.LedgerRecord{Kind: ledger.KindSecretRotated, Actor: "system",
						Attrs: map[string]any{"secret": ev.Secret, "old_version": ev.OldVersion, "new_version": ev.NewVersion}})
					return err
				})
				if err != nil {
					log.Error("record rotation", "org", org, "err", err)
				}
			}
			log.Info("secret rotated", "secret", ev.Secret, "old_version", ev.OldVersion, "new_version", ev.NewVersion)
		},
	}
	if every := c.Secrets.RotateSigningKey; every > 0 {
		r.Rotations = append(r.Rotations, secrets.Rotation{Secret: "ledger-signing-key", Every: every,
			Rotate: func(ctx context.Context) (int, int, error) { return b.RotateSigningKey(ctx) }})
	}
	if every := c.Secrets.RotatePepper; every > 0 {
		orgs, err := s.OrgIDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, org := range orgs {
			r.Rotations = append(r.Rotations, secrets.Rotation{Secret: "pepper/" + org, Every: every,
				Rotate: func(ctx context.Context) (int, int, error) { return b.Pepper.Rotate(ctx, org) }})
		}
	}
	return r, nil
}

// RotateSigningKey rotates the checkpoint key and switches the signer to
// the new version at once.
func (b *secretBackend) RotateSigningKey(ctx context.Context) (int, int, error) {
	oldV, newV, err := b.key.rotate(ctx)
	if err != nil {
		return oldV, newV, err
	}
	s, vkeys, err := b.currentSigner(ctx)
	if err != nil {
		return oldV, newV, err
	}
	b.Signer.Set(s, vkeys)
	return oldV, newV, nil
}

// ready reports whether the secret store answers (for /readyz): sends wait
// while it does not.
func (b *secretBackend) ready(ctx context.Context) error {
	_, err := b.Store.Versions(ctx, "herald/health")
	if err == nil || errors.Is(err, secrets.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("secret store: %w", err)
}

// watchSigner re-reads the signing key every interval and switches to a
// newer version rotated by another process (herald secrets rotate, another
// replica's rotator, or Vault's auto_rotate_period): no restart needed.
func (b *secretBackend) watchSigner(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, vkeys, err := b.currentSigner(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("refresh ledger signing key", "err", err)
			}
			continue
		}
		cur := b.Signer.Current()
		if s.KeyHash() != cur.KeyHash() || len(vkeys) != len(b.Signer.VerifierKeys()) {
			b.Signer.Set(s, vkeys)
			log.Info("ledger signing key changed", "key", vkeys[0])
		}
	}
}
