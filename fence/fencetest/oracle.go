// Package fencetest holds the brute-force model the fence tests of other
// packages check the fleet against: every fence tested at every position
// of every driver, events derived from each driver's consecutive
// positions, counts recomputed from scratch.
package fencetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Fact is one fence event as the oracle and a subscriber see it.
type Fact struct {
	Driver, Fence string
	Detect        geomatchv1.FenceDetect
	TimestampMs   int64
}

// FactOf returns the fact of a fence event.
func FactOf(fe *geomatchv1.FenceEvent) Fact {
	return Fact{fe.GetDriverId(), fe.GetFenceId(), fe.GetDetect(), fe.GetTimestampMs()}
}

// Oracle is the brute-force model. Crossings are left out: the fleet does
// not report one for a driver's first update on a node.
type Oracle struct {
	Fences []*fence.Fence
	last   map[string]geo.LatLng
	class  map[string]string
	// Facts are the events the oracle expects.
	Facts map[Fact]bool
}

// New returns an oracle over the fence definitions.
func New(defs []*geomatchv1.Fence) (*Oracle, error) {
	o := &Oracle{last: map[string]geo.LatLng{}, class: map[string]string{}, Facts: map[Fact]bool{}}
	for _, d := range defs {
		f, err := fencev1.Decode(d)
		if err != nil {
			return nil, fmt.Errorf("fence %s: %w", d.GetFenceId(), err)
		}
		o.Fences = append(o.Fences, f)
	}
	return o, nil
}

// Observe records driver id of vehicle class moving to p at ts (an
// acknowledged update).
func (o *Oracle) Observe(id, class string, p geo.LatLng, ts int64) {
	prev, had := o.last[id]
	for _, f := range o.Fences {
		if !f.Applies(class) {
			continue
		}
		in := f.Shape.Contains(p)
		was := had && f.Shape.Contains(prev)
		var t fence.Transition
		switch {
		case was && in:
			t = fence.Inside
		case was:
			t = fence.Exit
		case in:
			t = fence.Enter
		default:
			continue
		}
		d := f.Detect
		if d == 0 {
			d = fence.DefaultDetect
		}
		if d.Has(t) {
			o.Facts[Fact{id, f.ID, fencev1.DetectOfTransition(t), ts}] = true
		}
	}
	o.last[id], o.class[id] = p, class
}

// Count is the brute-force number of drivers inside f now.
func (o *Oracle) Count(f *fence.Fence) int64 {
	var n int64
	for id, p := range o.last {
		if f.Applies(o.class[id]) && f.Shape.Contains(p) {
			n++
		}
	}
	return n
}

// Diff compares received facts (with how often each arrived under distinct
// event ids) with the expected ones and describes the differences; "" when
// there are none.
func (o *Oracle) Diff(got map[Fact]int) string {
	var missing, extra, dup []Fact
	for k := range o.Facts {
		if got[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range got {
		if !o.Facts[k] {
			extra = append(extra, k)
		}
		if n > 1 {
			dup = append(dup, k)
		}
	}
	if len(missing)+len(extra)+len(dup) == 0 {
		return ""
	}
	return fmt.Sprintf("%d missing, %d extra, %d under several event ids; first missing %v, extra %v, several ids %v",
		len(missing), len(extra), len(dup), firstFacts(missing), firstFacts(extra), firstFacts(dup))
}

func firstFacts(fs []Fact) []Fact {
	slices.SortFunc(fs, func(a, b Fact) int {
		return cmp.Or(cmp.Compare(a.TimestampMs, b.TimestampMs), strings.Compare(a.Driver, b.Driver), strings.Compare(a.Fence, b.Fence))
	})
	return fs[:min(len(fs), 3)]
}

// Fences returns fence definitions over Midtown Manhattan and Brooklyn
// that span several res-7 shards: a polygon with a hole, a multipolygon
// that also reports inside, a triangle, circles, one circle for one
// vehicle class ("xl").
func Fences() []*geomatchv1.Fence {
	poly := func(id, gj string, detect ...geomatchv1.FenceDetect) *geomatchv1.Fence {
		return &geomatchv1.Fence{FenceId: id, Set: "zones", Shape: &geomatchv1.Fence_Geojson{Geojson: gj}, Detect: detect}
	}
	circle := func(id string, lat, lng, r float64, class string) *geomatchv1.Fence {
		return &geomatchv1.Fence{FenceId: id, Set: "circles", VehicleClass: class,
			Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: lat, Lng: lng}, RadiusM: r}}}
	}
	return []*geomatchv1.Fence{
		poly("midtown", `{"type":"Polygon","coordinates":[[[-74.00,40.74],[-73.96,40.74],[-73.96,40.77],[-74.00,40.77],[-74.00,40.74]],[[-73.985,40.75],[-73.975,40.75],[-73.975,40.76],[-73.985,40.76],[-73.985,40.75]]]}`),
		poly("two-parks", `{"type":"MultiPolygon","coordinates":[[[[-73.99,40.70],[-73.97,40.70],[-73.97,40.72],[-73.99,40.72],[-73.99,40.70]]],[[[-73.95,40.76],[-73.93,40.76],[-73.93,40.78],[-73.95,40.78],[-73.95,40.76]]]]}`,
			geomatchv1.FenceDetect_FENCE_DETECT_ENTER, geomatchv1.FenceDetect_FENCE_DETECT_EXIT, geomatchv1.FenceDetect_FENCE_DETECT_INSIDE),
		poly("triangle", `{"type":"Polygon","coordinates":[[[-74.02,40.70],[-73.94,40.73],[-74.01,40.79],[-74.02,40.70]]]}`),
		circle("airport-queue", 40.755, -73.985, 900, ""),
		circle("stadium", 40.72, -73.96, 1500, ""),
		circle("xl-lot", 40.74, -73.99, 1200, "xl"),
	}
}

// Walk moves a position by a random step of up to maxM meters (u and v
// uniform in [0, 1)), clamped to the box [40.68, 40.81] × [-74.04, -73.91]
// around the fences.
func Walk(p geo.LatLng, d, u, v float64) geo.LatLng {
	return geo.LatLng{
		Lat: min(max(p.Lat+(u-0.5)*d/55_000, 40.68), 40.81),
		Lng: min(max(p.Lng+(v-0.5)*d/42_000, -74.04), -73.91),
	}
}

// AntimeridianFences returns fences across the antimeridian near Fiji
// (-17, 180): a polygon written across it (read the short way round) with
// a hole, and a circle centred on it.
func AntimeridianFences() []*geomatchv1.Fence {
	return []*geomatchv1.Fence{
		{FenceId: "dateline", Set: "pacific", Shape: &geomatchv1.Fence_Geojson{Geojson: `{"type":"Polygon","coordinates":[` +
			`[[179.95,-17.05],[-179.95,-17.05],[-179.95,-16.95],[179.95,-16.95],[179.95,-17.05]],` +
			`[[179.99,-17.01],[-179.99,-17.01],[-179.99,-16.99],[179.99,-16.99],[179.99,-17.01]]]}`}},
		{FenceId: "dateline-circle", Set: "pacific", Detect: []geomatchv1.FenceDetect{geomatchv1.FenceDetect_FENCE_DETECT_ENTER, geomatchv1.FenceDetect_FENCE_DETECT_EXIT, geomatchv1.FenceDetect_FENCE_DETECT_INSIDE},
			Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: -17.0, Lng: 180}, RadiusM: 3000}}},
	}
}

// WalkAntimeridian is Walk for the box [-17.1, -16.9] × [179.9, -179.9]
// across the antimeridian: longitudes wrap to [-180, 180].
func WalkAntimeridian(p geo.LatLng, d, u, v float64) geo.LatLng {
	lng := p.Lng
	if lng < 0 {
		lng += 360 // continuous around 180
	}
	lng = min(max(lng+(v-0.5)*d/106_000, 179.9), 180.1)
	if lng > 180 {
		lng -= 360
	}
	return geo.LatLng{Lat: min(max(p.Lat+(u-0.5)*d/110_000, -17.1), -16.9), Lng: lng}
}
