package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/shardmap"
)

// TestCensusTakesUnreachableMembersShardsFromTheRecord: a census that never
// heard from a member (a writer just elected, the member dead) counts the
// active shards the ring record lists for it, and only for it; one that
// heard from it before keeps that answer.
func TestCensusTakesUnreachableMembersShardsFromTheRecord(t *testing.T) {
	// Both members are unreachable: nothing listens on port 1.
	m, err := shardmap.NewMap(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "127.0.0.1:1"}, {ID: "b", Addr: "127.0.0.1:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	var ofA, ofB []shardmap.Cell
	seen := map[shardmap.Cell]bool{}
	for i := range 400 {
		c := m.Layout().ShardOf(geo.LatLng{Lat: 40 + float64(i%20)*0.1, Lng: -74 + float64(i/20)*0.1})
		if seen[c] {
			continue
		}
		seen[c] = true
		o, _ := m.Owner(c)
		switch {
		case o.ID == "a" && len(ofA) < 3:
			ofA = append(ofA, c)
		case o.ID == "b" && len(ofB) < 2:
			ofB = append(ofB, c)
		}
	}
	if len(ofA) < 3 || len(ofB) < 2 {
		t.Fatalf("ring gives a %d and b %d shards", len(ofA), len(ofB))
	}
	recorded := append(append([]shardmap.Cell{}, ofA...), ofB...)
	s := newShardCensus()
	defer s.close()
	s.last["b"] = ofB[:1] // b answered an earlier census with one shard
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.Active(ctx, m, recorded)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]shardmap.Cell{}, ofA...), ofB[0])
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("active %v, want a's recorded shards and b's last answer %v", got, want)
	}
}
