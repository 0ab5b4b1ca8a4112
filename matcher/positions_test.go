package matcher

import (
	"log/slog"
	"testing"

	"github.com/geomatch/geomatch/store"
)

// TestNoPositionsForAStoreThatKeepsNone: a node writes positions behind to
// a store that keeps them, and queues none for one that says it does not
// (store.Memory.WithoutPositions, as geomatch dev's).
func TestNoPositionsForAStoreThatKeepsNone(t *testing.T) {
	for _, tt := range []struct {
		name  string
		st    PositionStore
		wants bool
	}{
		{"keeps", store.NewMemory(), true},
		{"keeps none", store.NewMemory().WithoutPositions(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig("a")
			cfg.Store = tt.st
			n, err := NewNode(cfg, twoNodeRing(t), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got := n.pos != nil; got != tt.wants {
				t.Fatalf("position writer: %v, want %v", got, tt.wants)
			}
		})
	}
}
