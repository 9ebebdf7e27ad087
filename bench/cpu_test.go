package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns the user plus system CPU time of process pid, all its
// threads included, in seconds; pid 0 is this process (the benchmark
// client), read with getrusage for microsecond resolution.
func cpuSeconds(pid int) (float64, error) {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, err
		}
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// cpuMeter reads the CPU time of named processes: the gateway, its store,
// the benchmark client.
type cpuMeter map[string]int // role -> pid (0: this process)

// cpuSnapshot is the CPU seconds of each role at one instant.
type cpuSnapshot map[string]float64

func (m cpuMeter) snap() (cpuSnapshot, error) {
	out := cpuSnapshot{}
	for role, pid := range m {
		s, err := cpuSeconds(pid)
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", role, err)
		}
		out[role] = s
	}
	return out, nil
}

// perGiB adds to metrics, for each role, the CPU seconds it spent between
// before and after per GiB of n bytes, as "<dir> <role> CPU"; and the sum
// of the server roles (gateway and store) as "<dir> server CPU".
func (s cpuSnapshot) perGiB(after cpuSnapshot, n int64, dir string, metrics map[string]float64) {
	gibs := float64(n) / gib
	server := 0.0
	for role, b := range s {
		d := (after[role] - b) / gibs
		metrics[dir+" "+role+" CPU"] = d
		if role != "client" {
			server += d
		}
	}
	metrics[dir+" server CPU"] = server
}
