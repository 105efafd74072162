package vaulttest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// procAttr makes the kernel kill the dev server if the test binary dies
// (panic, timeout, SIGKILL), so no orphaned Vault keeps running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// waitState waits until every thread of pid is in the wanted state class:
// stopped (T) after SIGSTOP, not stopped after SIGCONT. Signal delivery is
// asynchronous, and a Vault that still answers one request after Pause
// returned makes fault tests flaky.
func waitState(pid int, stopped bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := allThreads(pid, stopped)
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d did not reach stopped=%v", pid, stopped)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allThreads(pid int, stopped bool) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			continue // thread exited
		}
		// Format: "tid (comm) S ..."; comm may contain spaces or parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("unexpected %s/%s/stat", dir, t.Name())
		}
		state := b[i+2]
		if (state == 'T' || state == 't') != stopped {
			return false, nil
		}
	}
	return true, nil
}
