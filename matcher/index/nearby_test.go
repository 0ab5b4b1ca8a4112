package index

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

var testClasses = []string{"economy", "xl", "black", "bike"}

// scenario generates driver positions for one kind of place.
type scenario struct {
	name  string
	res   int // shard resolution
	point func(r *rand.Rand) geo.LatLng
	query func(r *rand.Rand) geo.LatLng
}

func clampLat(lat float64) float64 { return math.Max(-90, math.Min(90, lat)) }

// wrapLng folds a longitude into [-180, 180].
func wrapLng(lng float64) float64 {
	for lng > 180 {
		lng -= 360
	}
	for lng < -180 {
		lng += 360
	}
	return lng
}

// borderPoint is a point within about a meter of an edge of the res-7 cell
// around p, on either side.
func borderPoint(r *rand.Rand, p geo.LatLng, res int) geo.LatLng {
	b := h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, res).Boundary()
	i := r.IntN(len(b))
	a, c := b[i], b[(i+1)%len(b)]
	f := r.Float64()
	return geo.LatLng{
		Lat: clampLat(a.Lat + (c.Lat-a.Lat)*f + (r.Float64()-0.5)*2e-5),
		Lng: wrapLng(a.Lng + (c.Lng-a.Lng)*f + (r.Float64()-0.5)*2e-5),
	}
}

var scenarios = []scenario{
	{
		name: "new york with border clusters",
		res:  7,
		point: func(r *rand.Rand) geo.LatLng {
			p := geo.LatLng{Lat: 40.55 + 0.4*r.Float64(), Lng: -74.10 + 0.4*r.Float64()}
			if r.IntN(3) == 0 {
				return borderPoint(r, p, 7)
			}
			return p
		},
		query: func(r *rand.Rand) geo.LatLng {
			return geo.LatLng{Lat: 40.5 + 0.5*r.Float64(), Lng: -74.15 + 0.5*r.Float64()}
		},
	},
	{
		name: "antimeridian",
		res:  5,
		point: func(r *rand.Rand) geo.LatLng {
			lng := 179.2 + 0.8*r.Float64()
			if r.IntN(2) == 0 {
				lng = -lng
			}
			if r.IntN(10) == 0 {
				lng = float64(1-2*r.IntN(2)) * 180
			}
			return geo.LatLng{Lat: -65 + 0.5*r.Float64(), Lng: lng}
		},
		query: func(r *rand.Rand) geo.LatLng {
			return geo.LatLng{Lat: -65.2 + 0.9*r.Float64(), Lng: wrapLng(179 + 2*r.Float64())}
		},
	},
	{
		name: "north pole",
		res:  6,
		point: func(r *rand.Rand) geo.LatLng {
			return geo.LatLng{Lat: 89.9 + 0.1*r.Float64(), Lng: -180 + 360*r.Float64()}
		},
		query: func(r *rand.Rand) geo.LatLng {
			return geo.LatLng{Lat: 89.85 + 0.15*r.Float64(), Lng: -180 + 360*r.Float64()}
		},
	},
	{
		name: "south pole",
		res:  6,
		point: func(r *rand.Rand) geo.LatLng {
			return geo.LatLng{Lat: -89.9 - 0.1*r.Float64(), Lng: -180 + 360*r.Float64()}
		},
		query: func(r *rand.Rand) geo.LatLng {
			return geo.LatLng{Lat: -89.85 - 0.15*r.Float64(), Lng: -180 + 360*r.Float64()}
		},
	},
}

// TestNearbyMatchesBrute is the property test: for random driver sets and
// random queries, Nearby equals geo.NearestBrute over the drivers that pass
// the filter, bit for bit, also after moves, removals and status changes.
func TestNearbyMatchesBrute(t *testing.T) {
	drivers, queries := 3000, 300
	if testing.Short() {
		drivers, queries = 800, 80
	}
	for si, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(si), 42))
			ix, _ := newTestIndex(t, 0, 0)
			m := model{}
			var ts int64
			var pool []geo.LatLng // positions to duplicate
			put := func(id string) {
				ts++
				p := sc.point(r)
				if len(pool) > 0 && r.IntN(8) == 0 {
					p = pool[r.IntN(len(pool))] // duplicate position: ties by id
				}
				pool = append(pool, p)
				u := Update{
					ID:           id,
					Pos:          p,
					TimestampMs:  ts,
					Status:       Status(1 + r.IntN(4)),
					VehicleClass: testClasses[r.IntN(len(testClasses))],
					Shard:        cellOf(p, sc.res),
				}
				if res := apply1(ix, u); res.Outcome != OutcomeApplied {
					t.Fatalf("apply %s: %v", id, res.Outcome)
				}
				m[id] = Driver{ID: id, Pos: p, TimestampMs: ts, Status: u.Status, VehicleClass: u.VehicleClass, Shard: u.Shard}
			}
			for i := range drivers {
				put("d" + strconv.Itoa(i))
			}
			check := func(round string) {
				cells := shardCells(ix)
				if len(cells) < 3 {
					t.Fatalf("only %d shards: the test wants several", len(cells))
				}
				cells = append(cells, cellOf(geo.LatLng{Lat: 1, Lng: 1}, sc.res), cells[0]) // unknown and repeated
				var dst []Neighbor
				nonEmpty, results := 0, 0
				defer func() {
					t.Logf("%s: %d shards, %d queries, %d non-empty, %d results", round, len(cells)-2, queries, nonEmpty, results)
				}()
				for qi := range queries {
					q := sc.query(r)
					radius, k, f := randomRadius(r), randomK(r), randomFilter(r, testClasses)
					if qi%10 == 0 { // radius exactly the distance of a driver: inclusive
						id := "d" + strconv.Itoa(r.IntN(drivers))
						if d, ok := m[id]; ok {
							radius = geo.DistanceM(q, d.Pos)
						}
					}
					if qi%17 == 0 { // query at a driver's position
						q = pool[r.IntN(len(pool))]
					}
					dst = ix.Nearby(q, radius, k, cells, f, dst[:0])
					if len(dst) > 0 {
						nonEmpty++
						results += len(dst)
					}
					if diff := sameAnswer(m, dst, m.brute(q, radius, k, f)); diff != "" {
						t.Fatalf("%s, query %d (q=%v r=%v k=%d f=%+v): %s", round, qi, q, radius, k, f, diff)
					}
				}
			}
			check("initial")
			// Churn: moves (often across shards), removals, status changes,
			// new drivers, stale updates.
			ids := sortedIDs(m)
			for range drivers / 2 {
				id := ids[r.IntN(len(ids))]
				switch r.IntN(6) {
				case 0:
					if ix.Remove(id) != (m[id].ID != "") {
						t.Fatalf("Remove(%s) disagrees with the model", id)
					}
					delete(m, id)
				case 1:
					if res := apply1(ix, Update{ID: id, Pos: sc.point(r), TimestampMs: 0, Shard: cellOf(sc.point(r), sc.res)}); res.Outcome != OutcomeStale {
						t.Fatalf("stale update of %s: %v", id, res.Outcome)
					}
				case 2:
					ts++
					d, live := m[id]
					if !live { // a tombstone: comes back afresh somewhere
						d = Driver{ID: id, Pos: sc.point(r)}
						d.Shard = cellOf(d.Pos, sc.res)
					}
					res := apply1(ix, Update{ID: id, Pos: d.Pos, TimestampMs: ts, Status: StatusOffline, Shard: d.Shard})
					if res.Outcome != OutcomeApplied || res.Claimed == live {
						t.Fatalf("offline update of %s (live %v): %+v", id, live, res)
					}
					d.TimestampMs, d.Status = ts, StatusOffline
					m[id] = d
				default:
					put(id)
				}
			}
			for i := range drivers / 10 {
				put("n" + strconv.Itoa(i))
			}
			check("after churn")
			if ix.Len() != len(m) {
				t.Fatalf("Len = %d, model has %d", ix.Len(), len(m))
			}
			for id, want := range m {
				if got, ok := ix.Get(id); !ok || got != want {
					t.Fatalf("Get(%s) = %+v %v, want %+v", id, got, ok, want)
				}
			}
		})
	}
}

// TestNearbyEdgeCases covers the arguments that short-circuit and the rules
// on ties, radius and filters.
func TestNearbyEdgeCases(t *testing.T) {
	ix, _ := newTestIndex(t, 0, 0)
	shard := cellOf(timesSquare, 7)
	east := geo.LatLng{Lat: timesSquare.Lat, Lng: timesSquare.Lng + 0.001}
	for _, u := range []Update{
		{ID: "c", Pos: east, TimestampMs: 1, Shard: shard},
		{ID: "a", Pos: east, TimestampMs: 1, Shard: shard, VehicleClass: "xl"},
		{ID: "b", Pos: east, TimestampMs: 1, Shard: shard, Status: StatusOffline},
		{ID: "z", Pos: timesSquare, TimestampMs: 1, Shard: shard, Status: StatusOnTrip},
	} {
		apply1(ix, u)
	}
	cells := []h3.Cell{shard}
	dEast := geo.DistanceM(timesSquare, east)
	ids := func(ns []Neighbor) string {
		s := ""
		for _, n := range ns {
			s += n.Driver.ID
		}
		return s
	}
	tests := []struct {
		name   string
		q      geo.LatLng
		radius float64
		k      int
		cells  []h3.Cell
		f      Filter
		want   string
	}{
		{"default filter skips offline, ties by id", timesSquare, 1000, 10, cells, Filter{}, "zac"},
		{"offline on request", timesSquare, 1000, 10, cells, Filter{Status: StatusOffline}, "b"},
		{"k cuts ties by id", timesSquare, 1000, 2, cells, Filter{}, "za"},
		{"radius is inclusive", timesSquare, dEast, 10, cells, Filter{}, "zac"},
		{"radius just below", timesSquare, math.Nextafter(dEast, 0), 10, cells, Filter{}, "z"},
		{"radius zero finds exact position", timesSquare, 0, 10, cells, Filter{}, "z"},
		{"class filter", timesSquare, 1000, 10, cells, Filter{VehicleClass: "xl"}, "a"},
		{"unknown class", timesSquare, 1000, 10, cells, Filter{VehicleClass: "tank"}, ""},
		{"status filter", timesSquare, 1000, 10, cells, Filter{Status: StatusOnTrip}, "z"},
		{"k zero", timesSquare, 1000, 0, cells, Filter{}, ""},
		{"negative radius", timesSquare, -1, 10, cells, Filter{}, ""},
		{"NaN radius", timesSquare, math.NaN(), 10, cells, Filter{}, ""},
		{"infinite radius", timesSquare, math.Inf(1), 10, cells, Filter{}, "zac"},
		{"invalid query", geo.LatLng{Lat: math.NaN()}, 1000, 10, cells, Filter{}, ""},
		{"no shards", timesSquare, 1000, 10, nil, Filter{}, ""},
		{"unknown shard", timesSquare, 1000, 10, []h3.Cell{cellOf(brooklyn, 7)}, Filter{}, ""},
		{"repeated shard", timesSquare, 1000, 10, []h3.Cell{shard, shard, shard}, Filter{}, "zac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []Neighbor{{Driver: Driver{ID: "keep"}}}
			got := ix.Nearby(tt.q, tt.radius, tt.k, tt.cells, tt.f, prefix)
			if got[0].Driver.ID != "keep" || ids(got[1:]) != tt.want {
				t.Fatalf("got %q, want %q after the kept prefix", ids(got), tt.want)
			}
		})
	}
}

// TestNearbyNeverReturnsADriverTwice moves a driver from the shard a query
// has searched to the one it searches next: the query must notice (it re-runs)
// and, if the driver keeps moving, de-duplicate.
func TestNearbyNeverReturnsADriverTwice(t *testing.T) {
	a := cellOf(timesSquare, 7)
	var b h3.Cell
	for _, c := range a.GridDisk(1) {
		if c != a {
			b = c
			break
		}
	}
	pa, pb := timesSquare, geo.LatLng{Lat: b.LatLng().Lat, Lng: b.LatLng().Lng}
	for _, moves := range []int{1, nearbyRetries + 1, 100} {
		t.Run(strconv.Itoa(moves)+" moves", func(t *testing.T) {
			ix, _ := newTestIndex(t, 0, 0)
			apply1(ix, Update{ID: "anchor-a", Pos: pa, TimestampMs: 1, Shard: a})
			apply1(ix, Update{ID: "anchor-b", Pos: pb, TimestampMs: 1, Shard: b})
			apply1(ix, Update{ID: "mover", Pos: pa, TimestampMs: 1, Shard: a})
			ts, left, calls := int64(1), moves, 0
			ix.testBetweenShards = func() {
				calls++
				if calls%2 == 0 && left > 0 { // after the first shard of a run
					left--
					ts++
					d, _ := ix.Get("mover")
					to, at := a, pa
					if d.Shard == a {
						to, at = b, pb
					}
					if r := apply1(ix, Update{ID: "mover", Pos: at, TimestampMs: ts, Shard: to}); r.MovedFrom == 0 {
						t.Fatalf("move: %+v", r)
					}
				}
			}
			// Nearer to a, so a is searched first and the mover is seen
			// there before it moves to b.
			q := geo.LatLng{Lat: pa.Lat*0.9 + pb.Lat*0.1, Lng: pa.Lng*0.9 + pb.Lng*0.1}
			got := ix.Nearby(q, 50_000, 10, []h3.Cell{a, b}, Filter{}, nil)
			if msg := wellFormed(got, q, 50_000, 10, Filter{}); msg != "" {
				t.Fatalf("%s: %+v", msg, got)
			}
			// A driver in flight may be missed while moves keep
			// overlapping every re-run, but never shown twice; here the
			// last run sees it twice and de-duplicates.
			if len(got) != 3 {
				t.Fatalf("got %d drivers, want anchor-a, anchor-b and mover once: %+v", len(got), got)
			}
			if runs := min(moves+1, nearbyRetries+1); left != moves-min(moves, runs) || calls != 2*runs {
				t.Fatalf("%d moves left, %d shard visits", left, calls)
			}
		})
	}
}
