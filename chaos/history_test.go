package chaos

import (
	"testing"
	"time"
)

// TestHistoryKeepsOrderAcrossChunks: operations come back in the order
// they were added across chunk boundaries, and past max they are counted
// as dropped, not kept.
func TestHistoryKeepsOrderAcrossChunks(t *testing.T) {
	const max = 2*historyChunk + 5
	h := NewHistory(max, nil)
	for i := range max + 3 {
		h.Add(Op{Kind: KindUpdate, TS: int64(i), Start: time.Duration(i)})
	}
	ops, dropped := h.Ops()
	if len(ops) != max || dropped != 3 {
		t.Fatalf("kept %d, dropped %d; want %d and 3", len(ops), dropped, max)
	}
	for i, op := range ops {
		if op.TS != int64(i) {
			t.Fatalf("operation %d has ts %d: order lost across chunks", i, op.TS)
		}
	}
}
