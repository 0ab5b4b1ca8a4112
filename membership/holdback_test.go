package membership

import (
	"testing"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

func holdMembers(ids ...string) []shardmap.Member {
	out := make([]shardmap.Member, len(ids))
	for i, id := range ids {
		out[i] = shardmap.Member{ID: id, Addr: "127.0.0.1:1", Weight: 1}
	}
	return out
}

func memberIDs(m []shardmap.Member) []string {
	out := make([]string, len(m))
	for i, x := range m {
		out[i] = x.ID
	}
	return out
}

// TestHoldBackRules: one row per rule of holdBack.
func TestHoldBackRules(t *testing.T) {
	const grace = 3 * time.Second
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		current   []shardmap.Member
		healthy   []shardmap.Member
		exited    map[string]bool
		goneSince map[string]time.Time
		now       time.Time
		keep      []string
		recheck   time.Duration
	}{
		{"one of three fails: it leaves at once", holdMembers("a", "b", "c"), holdMembers("a", "b"), nil, map[string]time.Time{}, t0, nil, 0},
		{"all fail together (Consul was paused): all kept", holdMembers("a", "b", "c"), nil, nil, map[string]time.Time{}, t0, []string{"a", "b", "c"}, grace},
		{"half fail together: kept", holdMembers("a", "b", "c", "d"), holdMembers("a", "b"), nil, map[string]time.Time{}, t0, []string{"c", "d"}, grace},
		{"kept until the grace ends", holdMembers("a", "b", "c"), holdMembers("a"), nil, map[string]time.Time{"b": t0, "c": t0.Add(time.Second)}, t0.Add(2 * time.Second), []string{"b", "c"}, time.Second},
		{"after the grace they leave", holdMembers("a", "b", "c"), holdMembers("a"), nil, map[string]time.Time{"b": t0, "c": t0}, t0.Add(grace), nil, 0},
		{"a single-member ring is the writer's own business", holdMembers("a"), nil, nil, map[string]time.Time{}, t0, nil, 0},
		{"half exited together (their processes refused Consul's connection): none kept", holdMembers("a", "b", "c", "d"), holdMembers("a", "b"), map[string]bool{"c": true, "d": true}, map[string]time.Time{}, t0, nil, 0},
		{"one exited, the others' TTLs lapsed together: only those kept", holdMembers("a", "b", "c"), nil, map[string]bool{"a": true}, map[string]time.Time{}, t0, []string{"b", "c"}, grace},
		{"nobody gone", holdMembers("a", "b"), holdMembers("a", "b"), nil, map[string]time.Time{"b": t0}, t0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep, recheck := holdBack(tc.current, tc.healthy, tc.exited, tc.goneSince, tc.now, grace)
			if got := memberIDs(keep); len(got) != len(tc.keep) || (len(got) > 0 && !sameIDs(got, tc.keep)) {
				t.Fatalf("keep = %v, want %v", got, tc.keep)
			}
			if recheck != tc.recheck {
				t.Fatalf("recheck = %v, want %v", recheck, tc.recheck)
			}
		})
	}
}

// TestHoldBackForgetsReturnedMembers: a member that came back loses its
// record, so a later failure gets a fresh grace.
func TestHoldBackForgetsReturnedMembers(t *testing.T) {
	gone := map[string]time.Time{}
	t0 := time.Unix(1000, 0)
	holdBack(holdMembers("a", "b"), holdMembers("a"), nil, gone, t0, time.Second)
	holdBack(holdMembers("a", "b"), holdMembers("a", "b"), nil, gone, t0.Add(time.Hour), time.Second)
	if _, ok := gone["b"]; ok {
		t.Fatal("b came back but is still recorded as gone")
	}
	keep, _ := holdBack(holdMembers("a", "b"), holdMembers("a"), nil, gone, t0.Add(2*time.Hour), time.Second)
	if len(keep) != 1 {
		t.Fatalf("keep = %v, want b held back with a fresh grace", memberIDs(keep))
	}
}

func sameIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
