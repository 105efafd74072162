//go:build unix

package policies

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user + system). On a
// shared machine wall-clock latency mostly measures the neighbours; CPU
// time per operation is the figure that stays comparable.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
