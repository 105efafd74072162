//go:build tools

// Package tools records the Vault server as a dependency of this module so
// that go.sum pins every module needed to build it. It is never compiled:
// scripts/vault-bin.sh runs `go build github.com/hashicorp/vault` here.
package tools

import (
	_ "github.com/hashicorp/vault"
)
