#!/usr/bin/env bash
# vault-bin.sh prints the path of a Vault server binary for tests and .ci/run,
# building it first if it is not cached yet.
#
# Vault is not installed on the build machines and cannot be downloaded, but it
# builds from the Go module proxy. The build takes ~10 minutes on 2 cores, so
# the binary is cached outside the repository, keyed by the hash of
# tools/vault/go.sum: a change of the pinned versions gives a new cache entry,
# and an unchanged go.sum never rebuilds.
#
#   cache: ${HERALD_CACHE_DIR:-$(go env GOCACHE)/../herald}/vault-<sha256(go.sum)[:16]>/vault
#
# Only the path goes to stdout; progress goes to stderr. Concurrent callers
# (parallel test binaries, several engineers) serialise on a flock, and the
# binary is renamed into place atomically, so nobody ever runs a half-written
# file.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="$root/tools/vault"

if [[ ! -f "$mod/go.sum" ]]; then
	echo "vault-bin.sh: $mod/go.sum missing; resolve it once with: cd tools/vault && GOSUMDB=off go mod tidy" >&2
	exit 1
fi

key="$(sha256sum "$mod/go.sum" | cut -c1-16)"
base="${HERALD_CACHE_DIR:-$(go env GOCACHE)/../herald}"
dir="$base/vault-$key"
out="$dir/vault"

if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

# Another caller may have finished the build while we waited for the lock.
if [[ ! -x "$out" ]]; then
	echo "vault-bin.sh: building Vault into $out (about 10 minutes on 2 cores; cached afterwards)" >&2
	tmp="$(mktemp "$dir/vault.tmp.XXXXXX")"
	trap 'rm -f "$tmp"' EXIT
	start=$SECONDS
	(
		cd "$mod"
		# GOSUMDB=off: some of Vault's plugin modules are missing from the
		# checksum database here; the committed go.sum pins every download.
		GOFLAGS="-mod=mod -buildvcs=false" GOSUMDB=off \
			nice -n 10 go build -trimpath -ldflags="-s -w" -o "$tmp" github.com/hashicorp/vault
	)
	chmod 0755 "$tmp"
	mv -f "$tmp" "$out"
	trap - EXIT
	echo "vault-bin.sh: built in $((SECONDS - start))s" >&2
fi

echo "$out"
