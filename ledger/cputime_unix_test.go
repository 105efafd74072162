//go:build unix

package ledger

import (
	"syscall"
	"time"
)

// cpuTime returns the user+system CPU time of the process, so benchmarks on
// a shared machine can report throughput per CPU-second besides wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
