package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// parseHWM returns VmHWM (peak resident set size) in bytes from the text
// of /proc/PID/status.
func parseHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmHWM %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("status: no VmHWM")
}

// cpuOf is the CPU time pid has used so far, user and system, all its
// threads (exited ones too): the process's CPU clock (clock_getcpuclockid(3),
// CLOCK_PROCESS_CPUTIME_ID of another process), in nanoseconds. The
// utime and stime of /proc/PID/stat count 10 ms ticks, too coarse for a
// short burst (a 20-call burst of ~17 ms could read 0).
func cpuOf(pid int) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(processCPUClock(pid), &ts); err != nil {
		return 0, fmt.Errorf("cpu clock of %d: %w", pid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// processCPUClock is the clock id of pid's CPU clock: the kernel's
// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), ((~pid) << 3) | 2, what
// glibc's clock_getcpuclockid returns.
func processCPUClock(pid int) int32 {
	const cpuclockSched = 2
	return int32(^uint32(pid)<<3 | cpuclockSched)
}

// hwmOf is pid's peak RSS in bytes.
func hwmOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseHWM(string(b))
}
