package ui

import (
	"math"
	"strings"
	"testing"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// TestFenceOverlay draws a polygon with a hole, a multipolygon, and a
// circle; a shape that cannot be read is left out and counted.
func TestFenceOverlay(t *testing.T) {
	fences := []*geomatchv1.Fence{
		{FenceId: "square", Set: "a", Shape: &geomatchv1.Fence_Geojson{Geojson: `{"type":"Polygon","coordinates":[[[-74,40.7],[-73.9,40.7],[-73.9,40.8],[-74,40.8],[-74,40.7]],[[-73.96,40.74],[-73.94,40.74],[-73.94,40.76],[-73.96,40.74]]]}`}},
		{FenceId: "two", Set: "a", Shape: &geomatchv1.Fence_Geojson{Geojson: `{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]}`}},
		{FenceId: "ring", Set: "b", Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: 40.75, Lng: -73.98}, RadiusM: 500}}},
		{FenceId: "bad", Set: "b", Shape: &geomatchv1.Fence_Geojson{Geojson: `{"type":"Point","coordinates":[0,0]}`}},
	}
	ov := fenceOverlay(fences)
	if len(ov.Polygons) != 4 || !strings.Contains(ov.Name, "1 not drawn") {
		t.Fatalf("%d polygons, name %q", len(ov.Polygons), ov.Name)
	}
	sq := ov.Polygons[0]
	if len(sq.Rings) != 2 || sq.Rings[0][1] != [2]float64{40.7, -73.9} || sq.Title != "fence square (set a)" {
		t.Fatalf("square: %+v", sq)
	}
	c := ov.Polygons[3]
	if len(c.Rings) != 1 || len(c.Rings[0]) != circleVertices {
		t.Fatalf("circle: %+v", c)
	}
	for _, v := range c.Rings[0] {
		dy := (v[0] - 40.75) * 111195
		dx := (v[1] + 73.98) * 111195 * math.Cos(40.75*math.Pi/180)
		if d := math.Hypot(dx, dy); math.Abs(d-500) > 1 {
			t.Fatalf("circle vertex %v is %v m from the centre", v, d)
		}
	}
}

// TestFenceOverlayBound stops at maxFenceOverlay fences.
func TestFenceOverlayBound(t *testing.T) {
	f := &geomatchv1.Fence{FenceId: "c", Shape: &geomatchv1.Fence_Circle{Circle: &geomatchv1.Circle{Center: &geomatchv1.LatLng{}, RadiusM: 10}}}
	fences := make([]*geomatchv1.Fence, maxFenceOverlay+5)
	for i := range fences {
		fences[i] = f
	}
	if ov := fenceOverlay(fences); len(ov.Polygons) != maxFenceOverlay || !strings.Contains(ov.Name, "5 not drawn") {
		t.Fatalf("%d polygons, name %q", len(ov.Polygons), ov.Name)
	}
}
