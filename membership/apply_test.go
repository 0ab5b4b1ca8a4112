package membership_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/geomatch/geomatch/membership"
	"github.com/geomatch/geomatch/shardmap"
)

func newLocal(t *testing.T) *membership.Local {
	t.Helper()
	l, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLocalChangeSettingsPublishesTheChange: a change is published at the
// next epoch, wakes the watchers and places as asked.
func TestLocalChangeSettingsPublishesTheChange(t *testing.T) {
	l := newLocal(t)
	cur, changed := l.Current()
	o, _ := cur.Owner(shard)
	to := "a"
	if o.ID == "a" {
		to = "b"
	}
	before, after, err := l.ChangeSettings(context.Background(), membership.Move(shard, to))
	if err != nil {
		t.Fatal(err)
	}
	if before != cur || after.Epoch() != cur.Epoch()+1 {
		t.Fatalf("epochs %d -> %d, want %d -> %d", before.Epoch(), after.Epoch(), cur.Epoch(), cur.Epoch()+1)
	}
	if now, _ := l.Current(); now != after {
		t.Fatal("the new ring is not current")
	}
	select {
	case <-changed:
	default:
		t.Fatal("watchers were not woken")
	}
	if o, _ := after.Owner(shard); o.ID != to {
		t.Fatalf("owner %s, want %s", o.ID, to)
	}

	// Split, then merge back: the shard's pin went with the split.
	_, split, err := l.ChangeSettings(context.Background(), membership.Split(shard))
	if err != nil {
		t.Fatal(err)
	}
	if split.Layout().IsShard(shard) || !split.Layout().IsShard(children[3]) || len(split.Doc().Pins) != 0 {
		t.Fatalf("after the split: splits %v pins %v", split.Layout().Splits(), split.Doc().Pins)
	}
	_, merged, err := l.ChangeSettings(context.Background(), membership.Merge(shard))
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Layout().IsShard(shard) || merged.Epoch() != cur.Epoch()+3 {
		t.Fatalf("after the merge: shard %v, epoch %d", merged.Layout().IsShard(shard), merged.Epoch())
	}

	// Drain moves everything off the node; undrain gives it shards back.
	_, drained, err := l.ChangeSettings(context.Background(), membership.Drain("a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range children {
		if o, _ := drained.Owner(c); o.ID == "a" {
			t.Fatalf("drained a owns %s", c)
		}
	}
	if _, undrained, err := l.ChangeSettings(context.Background(), membership.Undrain("a")); err != nil || len(undrained.Doc().Drained) != 0 {
		t.Fatalf("undrain: %v %v", undrained, err)
	}
}

// TestLocalRefusedChangePublishesNothing: a refused change keeps the ring,
// its epoch and the watchers as they were, and says why.
func TestLocalRefusedChangePublishesNothing(t *testing.T) {
	l := newLocal(t)
	cur, changed := l.Current()
	for _, ch := range []membership.Change{membership.Move(shard, "zz"), membership.Merge(shard), membership.Unpin(shard), membership.Move(1, "a")} {
		before, after, err := l.ChangeSettings(context.Background(), ch)
		var ce *membership.ChangeError
		if !errors.As(err, &ce) || after != nil || before != cur {
			t.Fatalf("refused change: before %v after %v err %v", before, after, err)
		}
	}
	select {
	case <-changed:
		t.Fatal("watchers woken by refused changes")
	default:
	}
	if now, _ := l.Current(); now != cur {
		t.Fatal("a refused change replaced the ring")
	}
}

func TestStaticRingIsFixed(t *testing.T) {
	s, err := membership.NewStatic(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ChangeSettings(context.Background(), membership.Drain("a")); !errors.Is(err, membership.ErrFixedRing) {
		t.Fatalf("change of a static ring: %v", err)
	}
}

// TestLocalConcurrentChanges: changes made at once are applied one after
// the other, each at its own epoch, none lost.
func TestLocalConcurrentChanges(t *testing.T) {
	l := newLocal(t)
	start, _ := l.Current()
	cells := children
	if _, _, err := l.ChangeSettings(context.Background(), membership.Split(shard)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, c := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := l.ChangeSettings(context.Background(), membership.Move(c, []string{"a", "b", "c"}[i%3])); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	end, _ := l.Current()
	if end.Epoch() != start.Epoch()+1+uint64(len(cells)) || len(end.Doc().Pins) != len(cells) {
		t.Fatalf("epoch %d -> %d, pins %v", start.Epoch(), end.Epoch(), end.Doc().Pins)
	}
}
