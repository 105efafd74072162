//go:build !linux

package vaulttest

import "syscall"

// procAttr: without Pdeathsig, a crashed test binary may leave the dev
// server running until it is killed by hand.
func procAttr() *syscall.SysProcAttr { return nil }
