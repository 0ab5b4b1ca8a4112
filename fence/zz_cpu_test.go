package fence

import (
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUPut(t *testing.T) {
	fences := benchFences(t, newRand(4), 2000, 2000)
	for _, part := range [][]*Fence{fences[:2000], fences[2000:]} {
		ix, _ := NewIndex(9)
		c0, w0 := cpuNow(), time.Now()
		for _, f := range part {
			p, err := Prepare(f, 9)
			if err != nil {
				t.Fatal(err)
			}
			ix.PutPrepared(p)
		}
		t.Logf("cpu %v/put wall %v/put", (cpuNow()-c0)/2000, time.Since(w0)/2000)
	}
}
