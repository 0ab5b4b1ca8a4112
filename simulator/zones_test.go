package simulator

import (
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
)

// zoneCities are the cities the zones must work in: every preset (New
// York at 29°, Taveuni across the antimeridian, Longyearbyen at 78°N) and
// a small road file (one L-shaped street network).
func zoneCities(t *testing.T) []*city.Graph {
	t.Helper()
	var gs []*city.Graph
	for _, name := range city.PresetNames() {
		g, _ := testCity(t, name)
		gs = append(gs, g)
	}
	b := city.NewBuilder("roads", city.NewFrame(geo.LatLng{Lat: 48.85, Lng: 2.35}))
	var prev city.NodeID
	for i := 0; i < 30; i++ {
		x, y := float64(i)*100, 0.0
		if i >= 15 {
			x, y = 1400, float64(i-14)*100
		}
		n := b.AddNode(x, y)
		if i > 0 {
			if err := b.AddRoad(prev, n, city.Street, 30, false); err != nil {
				t.Fatal(err)
			}
		}
		prev = n
	}
	g, _, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return append(gs, g)
}

// decodedZones puts each zone of g through the service's own validation
// and returns the fences.
func decodedZones(t *testing.T, g *city.Graph) ([]city.Zone, []*fence.Fence) {
	t.Helper()
	zones := city.Zones(g)
	var fs []*fence.Fence
	for _, z := range zones {
		pb := zoneFence("sim-zones", g.Name, z)
		f, err := fencev1.Decode(pb)
		if err != nil {
			t.Fatalf("%s: zone %s does not decode: %v\n%s", g.Name, z.ID, err, z.GeoJSON())
		}
		if f.ID != "sim-zones/"+z.ID || f.Set != "sim-zones" || f.Labels["kind"] != z.Kind {
			t.Fatalf("%s: zone %s decodes as %s in set %s, labels %v", g.Name, z.ID, f.ID, f.Set, f.Labels)
		}
		if f.Detect != fence.DetectEnter|fence.DetectExit {
			t.Fatalf("%s: zone %s detects %v, want enter and exit", g.Name, z.ID, f.Detect)
		}
		fs = append(fs, f)
	}
	return zones, fs
}

// TestZonesAreValidFences: every zone of every city is a fence the
// service accepts, of the kinds the product asked for.
func TestZonesAreValidFences(t *testing.T) {
	for _, g := range zoneCities(t) {
		t.Run(g.Name, func(t *testing.T) {
			zones, _ := decodedZones(t, g)
			if len(zones) > city.MaxZones {
				t.Fatalf("%d zones, at most %d", len(zones), city.MaxZones)
			}
			kinds := map[string]int{}
			circles, holes := 0, 0
			ids := map[string]bool{}
			for _, z := range zones {
				kinds[z.Kind]++
				if z.IsCircle() {
					circles++
				} else if len(z.Rings) > 1 {
					holes++
				}
				if ids[z.ID] {
					t.Fatalf("zone id %s twice", z.ID)
				}
				ids[z.ID] = true
				switch {
				case z.Kind == city.ZoneAirport && z.IsCircle():
					t.Errorf("the airport is a circle, want a polygon")
				case z.Kind == city.ZoneStadium && !z.IsCircle():
					t.Errorf("the stadium is a polygon, want a circle")
				}
			}
			if d := kinds[city.ZoneDistrict]; d < 4 || d > 8 {
				t.Errorf("%d districts, want 4..8", d)
			}
			if kinds[city.ZoneAirport] != 1 || kinds[city.ZoneStadium] != 1 || circles < 3 || holes < 1 {
				t.Errorf("kinds %v, %d circles, %d polygons with holes; want an airport, a stadium, 3 circles, a hole", kinds, circles, holes)
			}
		})
	}
}

// TestZonesCoverTheCity: the districts hold every intersection but the
// park's (their hole), and every zone holds intersections, so drivers pass
// through all of them.
func TestZonesCoverTheCity(t *testing.T) {
	for _, g := range zoneCities(t) {
		t.Run(g.Name, func(t *testing.T) {
			zones, fs := decodedZones(t, g)
			holding := make([]int, len(zones))
			for _, n := range g.Nodes {
				districts, inPark := 0, false
				for i, f := range fs {
					if !f.Shape.Contains(n.Pos) {
						continue
					}
					holding[i]++
					switch zones[i].Kind {
					case city.ZoneDistrict:
						districts++
					case city.ZonePark:
						inPark = true
					}
				}
				if districts == 0 && !inPark {
					t.Fatalf("intersection at %v is in no district and not in the park", n.Pos)
				}
				if districts > 0 && inPark {
					t.Fatalf("intersection at %v is in the park and in %d districts (the park is a hole)", n.Pos, districts)
				}
			}
			if g.Name == "roads" {
				return // an L of streets misses most of its box's zones
			}
			for i, z := range zones {
				if holding[i] == 0 {
					t.Errorf("zone %s (%s) holds no intersection", z.ID, z.Kind)
				}
			}
		})
	}
}

// TestZonesAreDeterministic: the same city gives the same zones, and a
// city rebuilt from its preset too.
func TestZonesAreDeterministic(t *testing.T) {
	for _, name := range city.PresetNames() {
		g1, _ := testCity(t, name)
		g2, _ := testCity(t, name)
		a, b := city.Zones(g1), city.Zones(g2)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: zones differ between two builds of the city", name)
		}
		for i := range a {
			if a[i].GeoJSON() != b[i].GeoJSON() {
				t.Fatalf("%s: zone %s's GeoJSON differs", name, a[i].ID)
			}
		}
	}
}

// TestZoneEventsAreCounters: the subscription keeps counts per zone, and
// events of fences it does not know apart.
func TestZoneEventsAreCounters(t *testing.T) {
	g, _ := testCity(t, "longyearbyen")
	z := &zoneWatch{zones: city.Zones(g), index: map[string]int{}}
	z.enters = make([]atomic.Int64, len(z.zones))
	z.exits = make([]atomic.Int64, len(z.zones))
	for i, zn := range z.zones {
		z.index[zoneFenceID("sim-zones", zn)] = i
	}
	ev := func(id string, d geomatchv1.FenceDetect) *geomatchv1.FenceEvent {
		return &geomatchv1.FenceEvent{FenceId: id, Detect: d}
	}
	enter, exit := geomatchv1.FenceDetect_FENCE_DETECT_ENTER, geomatchv1.FenceDetect_FENCE_DETECT_EXIT
	for _, e := range []*geomatchv1.FenceEvent{
		ev("sim-zones/airport", enter), ev("sim-zones/airport", enter), ev("sim-zones/airport", exit),
		ev("sim-zones/stadium", enter), ev("someone-else", enter), nil,
	} {
		z.count(e)
	}
	airport := z.index["sim-zones/airport"]
	if z.enters[airport].Load() != 2 || z.exits[airport].Load() != 1 {
		t.Fatalf("airport: %d enters, %d exits; want 2 and 1", z.enters[airport].Load(), z.exits[airport].Load())
	}
	if en, ex := z.totals(); en != 3 || ex != 1 || z.other.Load() != 1 {
		t.Fatalf("totals %d enters, %d exits, %d other; want 3, 1, 1", en, ex, z.other.Load())
	}
}

func TestZoneSetIsValidated(t *testing.T) {
	for _, tc := range []struct {
		set   string
		zones bool
		want  string
	}{
		{"sim-zones", true, ""},
		{"", true, "zone set"},
		{"has space", true, "zone set"},
		{strings.Repeat("x", 65), true, "zone set"},
		{"", false, ""},
	} {
		cfg := testConfig(t)
		cfg.ZoneSet, cfg.Zones = tc.set, tc.zones
		err := cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("set %q (zones %v): err = %v, want %q", tc.set, tc.zones, err, tc.want)
		}
	}
}
