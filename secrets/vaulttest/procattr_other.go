//go:build !linux

package vaulttest

import (
	"syscall"
	"time"
)

// procAttr: without Pdeathsig, a crashed test binary may leave the dev
// server running until it is killed by hand.
func procAttr() *syscall.SysProcAttr { return nil }

// waitState cannot observe the process state here; give the signal time to
// land.
func waitState(pid int, stopped bool) error {
	time.Sleep(200 * time.Millisecond)
	return nil
}
