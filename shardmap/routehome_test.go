package shardmap

import (
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
)

// TestRouteHomeAgreesWithRouteAndLocate is RouteHome's contract: the same
// targets as Route, and as home the target of Locate's owner, for points
// anywhere (poles, antimeridian and pentagons included) and at radii on
// both sides of the cache's largest bucket, with and without splits.
func TestRouteHomeAgreesWithRouteAndLocate(t *testing.T) {
	r := newRand(41)
	cases := 3000
	if testing.Short() {
		cases = 300
	}
	for i := range cases {
		d := DefaultDoc(members(1 + i%5))
		p := randomPoint(r)
		if i%3 == 0 {
			p = awkwardPoint(r, d.ShardRes)
		}
		if i%4 == 1 {
			d.Splits = splitsAround(r, p, d.ShardRes, d.MaxSplitDepth)
		}
		m := mustMap(t, d)
		radius := []float64{0, 150, 2000, 40_000, MaxCachedRadiusM + 1}[i%5]
		ts, home := m.RouteHome(p, radius)
		want := m.Route(p, radius)
		if len(ts) != len(want) {
			t.Fatalf("RouteHome(%v, %v): %d targets, Route %d", p, radius, len(ts), len(want))
		}
		for j := range ts {
			if ts[j].Member.ID != want[j].Member.ID || len(ts[j].Shards) != len(want[j].Shards) {
				t.Fatalf("RouteHome(%v, %v): target %d differs from Route's", p, radius, j)
			}
		}
		_, _, owner, ok := m.Locate(p)
		switch {
		case !ok && home != -1:
			t.Fatalf("RouteHome(%v): home %d with no owner", p, home)
		case ok && (home < 0 || ts[home].Member.ID != owner.ID):
			t.Fatalf("RouteHome(%v): home %d, owner %s", p, home, owner.ID)
		}
	}
}

// TestRouteKeyCellIsH3s checks the route cache's key cell, computed without
// cgo from the fine cell, against h3.LatLngToCell.
func TestRouteKeyCellIsH3s(t *testing.T) {
	r := newRand(43)
	m := mustMap(t, DefaultDoc(members(3)))
	for range 5000 {
		p := randomPoint(r)
		want := h3.LatLngToCell(toH3(p), m.routes.keyRes)
		if got := m.keyCell(p); got != want {
			t.Fatalf("keyCell(%v) = %s, h3 says %s", p, got, want)
		}
	}
}

func TestRouteHomeInvalid(t *testing.T) {
	m := mustMap(t, DefaultDoc(members(2)))
	for _, p := range []geo.LatLng{{Lat: 91}, {Lng: 181}} {
		if ts, home := m.RouteHome(p, 100); ts != nil || home != -1 {
			t.Fatalf("RouteHome(%v) = %v, %d; want nil, -1", p, ts, home)
		}
	}
}
