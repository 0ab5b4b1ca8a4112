package gcpolicy

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Trimmer gives memory back to the operating system after a burst of
// connections has ended. The Go runtime keeps what a burst took (the
// stacks of thousands of goroutines, the buffers of their streams) until a
// collection frees it and the background scavenger returns it; at a large GOGC
// with little allocation afterwards the next collection is far away, so a
// process that held 20,000 streams kept its peak resident size long after
// they closed. Observe is told the number of live connections; once it has
// fallen to half its peak or less, by at least MinDrop, a goroutine of the
// Trimmer waits Settle (for the rest of a mass disconnect to end), runs
// debug.FreeOSMemory (a full collection, then everything free returned),
// and trims again every Every while the count keeps falling. It ends by
// itself once the count stops falling: there is one such goroutine at
// most, its owner is the Trimmer, and it stops by itself.
type Trimmer struct {
	// MinDrop is the least fall from the peak worth a trim; default 1000.
	MinDrop int
	// Settle is how long a trim waits after the fall that calls for it;
	// default 1 s.
	Settle time.Duration
	// Every is the least time between two trims; default 5 s. It bounds
	// the cost of the full collections that trims are (one per Every at
	// most), whatever clients do.
	Every time.Duration
	// Log, when set, gets a line per trim.
	Log *slog.Logger
	// Name names what is counted, in the log ("driver streams").
	Name string
	// free returns memory; debug.FreeOSMemory unless a test replaces it.
	free func()

	mu      sync.Mutex
	peak    int // the most since the last trim
	latest  int // the count last observed
	running bool
}

// Observe reports that n connections are live now. It never blocks on a
// trim.
func (t *Trimmer) Observe(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latest = n
	t.peak = max(t.peak, n)
	if t.running || !t.due() {
		return
	}
	t.running = true
	go t.run()
}

// due reports whether the count fell enough for a trim; t.mu is held.
func (t *Trimmer) due() bool {
	return t.peak-t.latest >= cmpOr(t.MinDrop, 1000) && t.latest <= t.peak/2
}

// run trims until the count stops falling.
func (t *Trimmer) run() {
	free := t.free
	if free == nil {
		free = debug.FreeOSMemory
	}
	every, settle := t.Every, t.Settle
	if every <= 0 {
		every = 5 * time.Second
	}
	if settle <= 0 {
		settle = time.Second
	}
	time.Sleep(settle)
	for {
		t.mu.Lock()
		from, to := t.peak, t.latest
		t.peak = t.latest // the next trim needs another fall from here
		t.mu.Unlock()

		start := time.Now()
		free()
		if t.Log != nil {
			t.Log.Info("returned free memory to the OS after connections ended", "what", t.Name, "from", from, "to", to, "took", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(every)

		t.mu.Lock()
		if !t.due() {
			t.running = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// MemoryBudget returns the memory this process may count on, in bytes: the
// soft memory limit in force (Apply sets it from the container's cgroup
// limit), else the machine's physical memory, else 0 when neither is
// known.
func MemoryBudget() int64 {
	if l := Current().MemoryLimit; l > 0 {
		return l
	}
	return physicalMemory()
}

// physicalMemory reads MemTotal of /proc/meminfo (Linux); 0 elsewhere.
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("MemTotal:")) {
			continue
		}
		fields := bytes.Fields(line[len("MemTotal:"):])
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb << 10
	}
	return 0
}
