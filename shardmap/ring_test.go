package shardmap

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// ringKeys returns n distinct shard cells at resolution 7 around the globe.
func ringKeys(n int) []Cell {
	r := newRand(30)
	seen := map[Cell]bool{}
	var out []Cell
	for len(out) < n {
		c := h3.LatLngToCell(toH3(randomPoint(r)), 7)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func mustRing(t testing.TB, ms []Member, vnodes int) *Ring {
	t.Helper()
	r, err := NewRing(ms, vnodes)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

// counts returns the number of keys per member id.
func counts(r *Ring, keys []Cell) map[string]int {
	c := map[string]int{}
	for _, k := range keys {
		c[r.Owner(k)]++
	}
	return c
}

// maxOverAvg is the load of the most loaded member over the average.
func maxOverAvg(c map[string]int, nKeys, nMembers int) float64 {
	most := 0
	for _, n := range c {
		most = max(most, n)
	}
	return float64(most) / (float64(nKeys) / float64(nMembers))
}

func TestHashesAreFNV1aWithSplitmix(t *testing.T) {
	for _, id := range []string{"", "a", "matcher-1", strings.Repeat("x", 300)} {
		for _, v := range []int{0, 7, 127, 4095} {
			h := fnv.New64a()
			fmt.Fprintf(h, "%s#%d", id, v)
			if got, want := vnodeHash(id, v), splitmix64(h.Sum64()); got != want {
				t.Fatalf("vnodeHash(%q, %d) = %#x, want %#x", id, v, got, want)
			}
		}
	}
	c := h3.LatLngToCell(toH3(nyc), 7)
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(c) >> (8 * i))
	}
	h.Write(b[:])
	if got, want := keyHash(c), splitmix64(h.Sum64()); got != want {
		t.Fatalf("keyHash(%s) = %#x, want %#x", c, got, want)
	}
	// splitmix64 reference values (the first outputs of SplitMix64 seeded
	// with 0 are splitmix64(0), splitmix64(0x9e3779b97f4a7c15), ...).
	if got := splitmix64(0); got != 0xe220a8397b1dcdaf {
		t.Fatalf("splitmix64(0) = %#x", got)
	}
}

// TestRingGolden pins placement: routers and matchers built from different
// binaries must agree, so a change of these owners is a breaking change.
func TestRingGolden(t *testing.T) {
	r := mustRing(t, members(5), DefaultVNodes)
	keys := []Cell{0x872a1072bffffff, 0x872a100d2ffffff, 0x8f2a100d2c9a5a4, 0x80f3fffffffffff}
	var got []string
	for _, k := range keys {
		got = append(got, r.Owner(k))
	}
	want := []string{"m01", "m03", "m02", "m01"}
	if !slices.Equal(got, want) {
		t.Fatalf("owners = %q, want %q", got, want)
	}
}

func TestRingDeterministic(t *testing.T) {
	ms := members(7)
	ms[2].Weight = 2.5
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	a, b := mustRing(t, ms, 100), mustRing(t, rev, 100)
	for _, k := range ringKeys(10000) {
		if a.Owner(k) != b.Owner(k) {
			t.Fatalf("key %s: owner %s with one member order, %s with another", k, a.Owner(k), b.Owner(k))
		}
	}
	if !slices.Equal(a.Members(), b.Members()) || a.Members()[0].ID != "m00" {
		t.Fatalf("Members() differ or are not sorted: %v, %v", a.Members(), b.Members())
	}
}

func TestRingEmpty(t *testing.T) {
	r := mustRing(t, nil, DefaultVNodes)
	if got := r.Owner(0x872a1072bffffff); got != "" {
		t.Fatalf("Owner on an empty ring = %q", got)
	}
}

func TestNewRingValidation(t *testing.T) {
	tests := []struct {
		name    string
		ms      []Member
		vnodes  int
		wantErr string
	}{
		{"empty id", []Member{{ID: "a"}, {ID: "", Addr: "h:1"}}, 10, `empty id`},
		{"duplicate id", []Member{{ID: "a"}, {ID: "b"}, {ID: "a"}}, 10, `member "a": duplicate id`},
		{"negative weight", []Member{{ID: "a", Weight: -1}}, 10, `member "a": weight -1`},
		{"NaN weight", []Member{{ID: "a", Weight: math.NaN()}}, 10, `member "a": weight NaN`},
		{"infinite weight", []Member{{ID: "a", Weight: math.Inf(1)}}, 10, `member "a": weight +Inf`},
		{"huge weight", []Member{{ID: "a", Weight: 1e6}}, 10, `member "a": weight`},
		{"long id", []Member{{ID: strings.Repeat("x", MaxMemberIDLen+1)}}, 10, "longer than"},
		{"zero vnodes", []Member{{ID: "a"}}, 0, "vnodes per member 0"},
		{"too many vnodes", []Member{{ID: "a"}}, MaxVNodes + 1, "vnodes per member"},
		{"too many points", []Member{{ID: "a", Weight: MaxWeight}, {ID: "b", Weight: MaxWeight}}, MaxVNodes, "virtual nodes, more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRing(tt.ms, tt.vnodes)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewRing: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := NewRing([]Member{{ID: "a", Weight: 0.001}}, 1); err != nil {
		t.Fatalf("tiny weight: %v, want at least one point", err)
	}
}

func TestRingWeights(t *testing.T) {
	ms := members(4)
	ms[1].Weight = 2
	ms[2].Weight = 0 // means 1
	keys := ringKeys(10000)
	c := counts(mustRing(t, ms, DefaultVNodes), keys)
	others := float64(c["m00"]+c["m02"]+c["m03"]) / 3
	ratio := float64(c["m01"]) / others
	t.Logf("weight 2 member: %d keys, weight 1 members: %.0f on average, ratio %.3f", c["m01"], others, ratio)
	if ratio < 1.7 || ratio > 2.3 {
		t.Fatalf("a weight-2 member gets %.3f times the keys of weight-1 members, want about 2", ratio)
	}
}

// TestRingBalanceAndMovement reports balance (most loaded member over the
// average) and the keys moved when a member joins or leaves, and asserts
// the consistent hashing guarantees: balance within 25% over 10k keys, a
// join moves at most 1.3 times the ideal 1/(n+1) of the keys, all of them
// to the new member, and a leave moves only the leaving member's keys.
func TestRingBalanceAndMovement(t *testing.T) {
	nyc7 := nycCells(7)
	t.Logf("New York box at res 7: %d shard cells", len(nyc7))
	for _, keySet := range []struct {
		name   string
		keys   []Cell
		assert bool
	}{{"10k random shards", ringKeys(10000), true}, {"New York shards", nyc7, false}} {
		for _, n := range []int{3, 5, 10} {
			for _, vnodes := range []int{100, DefaultVNodes, 512} {
				ms := members(n + 1)
				before := mustRing(t, ms[:n], vnodes)
				joined := mustRing(t, ms, vnodes)
				left := mustRing(t, ms[1:n], vnodes) // m00 leaves
				keys := keySet.keys
				balance := maxOverAvg(counts(before, keys), len(keys), n)
				movedJoin, movedLeave := 0, 0
				for _, k := range keys {
					if o, o2 := before.Owner(k), joined.Owner(k); o != o2 {
						movedJoin++
						if o2 != ms[n].ID && keySet.assert {
							t.Fatalf("%d members: key %s moved from %s to %s on a join of %s", n, k, o, o2, ms[n].ID)
						}
					}
					if o, o2 := before.Owner(k), left.Owner(k); o != o2 {
						movedLeave++
						if o != ms[0].ID && keySet.assert {
							t.Fatalf("%d members: key %s moved from %s to %s on a leave of %s", n, k, o, o2, ms[0].ID)
						}
					}
				}
				join := float64(movedJoin) / float64(len(keys))
				leave := float64(movedLeave) / float64(len(keys))
				t.Logf("%-17s %2d members, %3d vnodes: max/avg %.3f; join moves %.3f (ideal %.3f, x%.2f); leave moves %.3f (ideal %.3f)",
					keySet.name, n, vnodes, balance, join, 1/float64(n+1), join*float64(n+1), leave, 1/float64(n))
				if !keySet.assert {
					continue
				}
				if balance > 1.25 {
					t.Errorf("%d members, %d vnodes: max/avg = %.3f, want <= 1.25", n, vnodes, balance)
				}
				if join > 1.3/float64(n+1) {
					t.Errorf("%d members, %d vnodes: a join moves %.3f of the keys, want <= 1.3/(n+1) = %.3f", n, vnodes, join, 1.3/float64(n+1))
				}
			}
		}
	}
}

func BenchmarkRingOwner(b *testing.B) {
	b.ReportAllocs()
	r := mustRing(b, members(10), DefaultVNodes)
	keys := ringKeys(1024)
	i := 0
	for b.Loop() {
		r.Owner(keys[i&1023])
		i++
	}
}

// TestDriversPerMember reports how evenly drivers, not just shards, spread
// over members on the default map: 100k drivers over the New York box,
// uniform and with a hot spot (half of them within 3 km of Midtown). With
// only ~300 shards in a city, cells rather than vnodes limit the balance;
// uniform drivers on 3 members stay within 35% of the average.
func TestDriversPerMember(t *testing.T) {
	r := newRand(77)
	uniform := make([]geo.LatLng, 100_000)
	hot := make([]geo.LatLng, len(uniform))
	for i := range uniform {
		uniform[i] = geo.LatLng{Lat: 40.55 + 0.40*r.Float64(), Lng: -74.10 + 0.40*r.Float64()}
		hot[i] = uniform[i]
		if i%2 == 0 {
			hot[i] = destination(geo.LatLng{Lat: 40.7580, Lng: -73.9855}, 360*r.Float64(), 3000*math.Sqrt(r.Float64()))
		}
	}
	for _, n := range []int{3, 5, 10} {
		m := mustMap(t, DefaultDoc(members(n)))
		for _, set := range []struct {
			name string
			pts  []geo.LatLng
		}{{"uniform", uniform}, {"hot spot", hot}} {
			drivers := map[string]int{}
			shards := map[string]map[Cell]bool{}
			for _, p := range set.pts {
				_, shard, owner, ok := m.Locate(p)
				if !ok {
					t.Fatalf("no owner for %v", p)
				}
				drivers[owner.ID]++
				if shards[owner.ID] == nil {
					shards[owner.ID] = map[Cell]bool{}
				}
				shards[owner.ID][shard] = true
			}
			maxD, maxS, totS := 0, 0, 0
			for _, mem := range m.Members() {
				maxD = max(maxD, drivers[mem.ID])
				maxS = max(maxS, len(shards[mem.ID]))
				totS += len(shards[mem.ID])
			}
			dBal := float64(maxD) * float64(n) / float64(len(set.pts))
			sBal := float64(maxS) * float64(n) / float64(totS)
			t.Logf("%2d members, %-8s drivers: shards max/avg %.3f, drivers max/avg %.3f", n, set.name, sBal, dBal)
			if n == 3 && set.name == "uniform" && dBal > 1.35 {
				t.Errorf("3 members, uniform drivers: max/avg %.3f, want <= 1.35", dBal)
			}
		}
	}
}
