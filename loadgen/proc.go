package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicksPerS is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTicksPerS = 100

// procMeter reads the CPU time and resident set of the server: this process
// (an embedded cluster) or another one on this machine. A nil *procMeter
// measures nothing.
type procMeter struct {
	pid int // 0: this process
}

// newProcMeter returns the meter cfg asks for, nil for none.
func newProcMeter(cfg Config) *procMeter {
	switch {
	case cfg.ServerPID != 0:
		return &procMeter{pid: cfg.ServerPID}
	case cfg.MeasureProcess:
		return &procMeter{}
	}
	return nil
}

// cpu is the process's user+system CPU time so far, 0 when unknown.
func (m *procMeter) cpu() time.Duration {
	switch {
	case m == nil:
		return 0
	case m.pid == 0:
		return cpuTime()
	}
	d, err := procCPU(m.pid)
	if err != nil {
		return 0
	}
	return d
}

// rss is the process's resident set and the peak of it since the process
// started, in bytes, 0 when unknown.
func (m *procMeter) rss() (now, peak int64) {
	if m == nil {
		return 0, 0
	}
	path := "/proc/self/status"
	if m.pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", m.pid)
	}
	return statusKB(path, "VmRSS:"), statusKB(path, "VmHWM:")
}

// CheckProcess reports whether pid names a running process whose CPU time
// this machine exposes, for Config.ServerPID.
func CheckProcess(pid int) error {
	if _, err := procCPU(pid); err != nil {
		return fmt.Errorf("server pid %d: %w", pid, err)
	}
	return nil
}

// procCPU reads utime+stime of process pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after its closing parenthesis start with field 3, state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	u, err1 := strconv.ParseInt(f[utime], 10, 64)
	s, err2 := strconv.ParseInt(f[stime], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad cpu times %q %q", pid, f[utime], f[stime])
	}
	return time.Duration(u+s) * time.Second / clockTicksPerS, nil
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusKB is a line of a /proc/…/status file ("VmRSS:", "VmHWM:") in
// bytes, or 0 where that file or line does not exist.
func statusKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// phaseMeter measures one phase: the server's CPU and resident set, the
// load generator's own CPU when the server is another process, and the Go
// runtime's share of the server's CPU spent in the garbage collector and
// its live heap at the phase's end: read in process when the server is
// this process, else from the server's /metrics (Config.ServerMetrics).
type phaseMeter struct {
	server    *procMeter
	cfg       Config
	self0     time.Duration
	srv0      time.Duration
	gc0, all0 float64
	goRuntime bool // the server is this process
	scraped   bool // gc0 and all0 came from the server's /metrics
}

// startPhase starts measuring a phase of a run under cfg with server.
func startPhase(cfg Config, server *procMeter) *phaseMeter {
	m := &phaseMeter{server: server, cfg: cfg, self0: cpuTime(), srv0: server.cpu(), goRuntime: server != nil && server.pid == 0}
	switch {
	case m.goRuntime:
		m.gc0, m.all0, _ = runtimeCPU()
	case cfg.ServerMetrics != "":
		if s, err := scrapeRuntime(context.Background(), cfg.ServerMetrics); err == nil {
			m.gc0, m.all0, m.scraped = s.gcCPU, s.totalCPU, true
		}
	}
	return m
}

// finish fills res's CPU, resident set and runtime figures.
func (m *phaseMeter) finish(res *PhaseResult) {
	if m.scraped {
		if s, err := scrapeRuntime(context.Background(), m.cfg.ServerMetrics); err == nil {
			if d := s.totalCPU - m.all0; d > 0 {
				res.GCCPUShare = (s.gcCPU - m.gc0) / d
			}
			res.LiveHeapBytes = int64(s.live)
		}
	}
	if m.server == nil {
		return
	}
	res.CPUSeconds = (m.server.cpu() - m.srv0).Seconds()
	res.RSSBytes, res.PeakRSSBytes = m.server.rss()
	if res.Ops > 0 {
		res.CPUPerOpUs = res.CPUSeconds * 1e6 / float64(res.Ops)
	}
	if m.cfg.ServerPID != 0 {
		res.ClientCPUSeconds = (cpuTime() - m.self0).Seconds()
	}
	if m.goRuntime {
		gc, all, live := runtimeCPU()
		if d := all - m.all0; d > 0 {
			res.GCCPUShare = (gc - m.gc0) / d
		}
		res.LiveHeapBytes = int64(live)
	}
}

// runtimeCPU reads the Go runtime's estimates of the CPU time spent in the
// garbage collector and in all, in seconds since the process started, and
// the heap the last collection found live, in bytes.
func runtimeCPU() (gc, all float64, live uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindFloat64 {
		gc = s[0].Value.Float64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		all = s[1].Value.Float64()
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		live = s[2].Value.Uint64()
	}
	return gc, all, live
}
