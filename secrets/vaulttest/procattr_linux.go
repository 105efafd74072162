package vaulttest

import "syscall"

// procAttr makes the kernel kill the dev server if the test binary dies
// (panic, timeout, SIGKILL), so no orphaned Vault keeps running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
