package resp

import (
	"hash/maphash"
	"testing"
	"time"
)

func TestUpdateClock(t *testing.T) {
	c := &updateClock{seed: maphash.MakeSeed()}
	now := time.UnixMilli(1_700_000_000_000)
	last := int64(0)
	for i := range 1000 { // one driver, faster than the clock
		ts := c.next("cab-1", now)
		if ts <= last {
			t.Fatalf("update %d: timestamp %d after %d", i, ts, last)
		}
		last = ts
	}
	if last != now.UnixMilli()+999 {
		t.Errorf("last timestamp %d, want now + 999 ms", last)
	}
	if ts := c.next("cab-1", now.Add(2*time.Second)); ts != now.UnixMilli()+2000 {
		t.Errorf("after the clock caught up: %d, want the clock's %d", ts, now.UnixMilli()+2000)
	}
	// Other drivers are not held back by cab-1, only by sharing a slot
	// (among 1000 drivers in 65,536 slots, about 8 pairs do).
	ahead := 0
	for i := range 1000 {
		if c.next(string(rune('a'+i%26))+string(rune(i)), now) != now.UnixMilli() {
			ahead++
		}
	}
	if ahead > 40 {
		t.Errorf("%d of 1000 other drivers got a timestamp ahead of the clock", ahead)
	}
}
