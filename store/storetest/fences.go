package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/geomatch/geomatch/store"
)

// testFences: puts assign increasing revisions, replace by id (moving a
// fence between sets), list pages by id within a set, deletes are
// ErrNotFound the second time, and FenceChanges replays puts and deletes
// after a revision, in revision order, in pages.
func testFences(t *testing.T, newStore func(t *testing.T) store.Store) {
	s, ctx, _ := setup(t, newStore)
	var last uint64
	for i := range 5 {
		set := "a"
		if i%2 == 1 {
			set = "b"
		}
		rec, err := s.PutFence(ctx, store.FenceRecord{ID: fmt.Sprintf("f%d", i), Set: set, Data: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Rev <= last {
			t.Fatalf("put f%d: revision %d after %d", i, rec.Rev, last)
		}
		last = rec.Rev
	}
	base := last
	// f0 moves to set b.
	if _, err := s.PutFence(ctx, store.FenceRecord{ID: "f0", Set: "b", Data: []byte("moved")}); err != nil {
		t.Fatal(err)
	}
	ids := func(recs []store.FenceRecord) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	got, err := s.ListFences(ctx, "b", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"f0", "f1"}; !slices.Equal(ids(got), want) {
		t.Fatalf("first page of set b = %v, want %v", ids(got), want)
	}
	got, _ = s.ListFences(ctx, "b", "f1", 2)
	if want := []string{"f3"}; !slices.Equal(ids(got), want) {
		t.Fatalf("second page of set b = %v, want %v", ids(got), want)
	}
	got, _ = s.ListFences(ctx, "", "", 100)
	if want := []string{"f0", "f1", "f2", "f3", "f4"}; !slices.Equal(ids(got), want) {
		t.Fatalf("every fence = %v, want %v", ids(got), want)
	}
	rec, err := s.Fence(ctx, "f0")
	if err != nil || string(rec.Data) != "moved" || rec.Set != "b" {
		t.Fatalf("Fence(f0) = %+v, %v", rec, err)
	}
	if _, err := s.DeleteFence(ctx, "f2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteFence(ctx, "f2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Fence(ctx, "f2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Fence of a deleted fence: %v, want ErrNotFound", err)
	}
	if n, _ := s.CountFences(ctx); n != 4 {
		t.Fatalf("CountFences = %d, want 4", n)
	}
	// Changes after base: f0's replacement, then f2's deletion; in pages of 1.
	var changes []store.FenceRecord
	since := base
	for range 10 {
		ch, err := s.FenceChanges(ctx, since, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Reset {
			t.Fatal("unexpected reset")
		}
		changes = append(changes, ch.Records...)
		since = ch.Rev
		if !ch.More {
			break
		}
	}
	if len(changes) != 2 || changes[0].ID != "f0" || string(changes[0].Data) != "moved" || changes[1].ID != "f2" || changes[1].Data != nil {
		t.Fatalf("changes since %d = %+v", base, changes)
	}
	// From zero: every live fence, no deletions.
	ch, err := s.FenceChanges(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Records) != 4 || ch.Rev != since {
		t.Fatalf("changes since 0: %d records up to %d, want 4 up to %d", len(ch.Records), ch.Rev, since)
	}
}

// testFenceStates: saved states read back; an older state does not
// replace a newer one; an empty one deletes.
func testFenceStates(t *testing.T, newStore func(t *testing.T) store.Store) {
	s, ctx, _ := setup(t, newStore)
	if err := s.SaveFenceStates(ctx, map[string]store.FenceState{"d1": {TimestampMs: 10, IDs: []string{"a", "b"}}, "d2": {TimestampMs: 10, IDs: []string{"c"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFenceStates(ctx, map[string]store.FenceState{"d2": {TimestampMs: 11}, "d1": {TimestampMs: 9, IDs: []string{"old"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FenceStates(ctx, []string{"d1", "d2", "d3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["d1"].TimestampMs != 10 || !slices.Equal(got["d1"].IDs, []string{"a", "b"}) {
		t.Fatalf("FenceStates = %v", got)
	}
}
