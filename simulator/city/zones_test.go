package city

import (
	"encoding/json"
	"math"
	"testing"
)

// TestCityBoxFollowsTheGrid: a grid's box is the grid itself, along its
// avenues' bearing, whatever the bearing.
func TestCityBoxFollowsTheGrid(t *testing.T) {
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			g, err := Grid(p.Grid)
			if err != nil {
				t.Fatal(err)
			}
			b := CityBox(g)
			long, short := max(p.Grid.LengthM, p.Grid.WidthM), min(p.Grid.LengthM, p.Grid.WidthM)
			pad := 2 * boxPadFrac * long
			// Whole blocks: the grid may stop short of its nominal extent.
			block := max(p.Grid.AvenueSpacingM, p.Grid.StreetSpacingM)
			if math.Abs(b.LengthM-pad-long) > block || math.Abs(b.WidthM-pad-short) > block {
				t.Fatalf("box %.0f x %.0f m, want about %.0f x %.0f plus %.0f", b.LengthM, b.WidthM, long, short, pad)
			}
			// The long axis is the avenues' (LengthM >= WidthM in the presets).
			rad := p.Grid.BearingDeg * math.Pi / 180
			ax, ay := math.Sin(rad), math.Cos(rad)
			if dot := math.Abs(ax*b.UX + ay*b.UY); dot < 0.9999 {
				t.Fatalf("axis (%.3f, %.3f), want along bearing %v° (%.3f, %.3f)", b.UX, b.UY, p.Grid.BearingDeg, ax, ay)
			}
			if b.UY < 0 || math.Abs(b.UX*b.VX+b.UY*b.VY) > 1e-12 || b.UX*b.VY-b.UY*b.VX >= 0 {
				t.Fatalf("axes U (%.3f, %.3f), V (%.3f, %.3f): want U northward, V to its right", b.UX, b.UY, b.VX, b.VY)
			}
			for _, n := range g.Nodes {
				fu, fv := b.Fractions(n.X, n.Y)
				if fu <= 0 || fu >= 1 || fv <= 0 || fv >= 1 {
					t.Fatalf("intersection at %.0f, %.0f is at %.3f, %.3f of the box, want strictly inside", n.X, n.Y, fu, fv)
				}
			}
			x, y := b.XY(0.25, 0.75)
			if fu, fv := b.Fractions(x, y); math.Abs(fu-0.25) > 1e-9 || math.Abs(fv-0.75) > 1e-9 {
				t.Fatalf("Fractions(XY(0.25, 0.75)) = %v, %v", fu, fv)
			}
		})
	}
}

// TestZoneGeoJSON: polygons are GeoJSON Polygons with closed rings,
// circles have none.
func TestZoneGeoJSON(t *testing.T) {
	p, _ := PresetByName("taveuni")
	g, err := Grid(p.Grid)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range Zones(g) {
		if z.IsCircle() {
			if z.GeoJSON() != "" || !(z.RadiusM >= minRadiusM && z.RadiusM <= maxRadiusM) {
				t.Fatalf("circle %s: GeoJSON %q, radius %v", z.ID, z.GeoJSON(), z.RadiusM)
			}
			continue
		}
		var doc struct {
			Type        string
			Coordinates [][][2]float64
		}
		if err := json.Unmarshal([]byte(z.GeoJSON()), &doc); err != nil {
			t.Fatalf("%s: %v", z.ID, err)
		}
		if doc.Type != "Polygon" || len(doc.Coordinates) != len(z.Rings) {
			t.Fatalf("%s: %s with %d rings, want a Polygon with %d", z.ID, doc.Type, len(doc.Coordinates), len(z.Rings))
		}
		for _, ring := range doc.Coordinates {
			if len(ring) < 4 || ring[0] != ring[len(ring)-1] {
				t.Fatalf("%s: ring of %d positions, open or too short", z.ID, len(ring))
			}
			for _, pos := range ring {
				if pos[0] < -180 || pos[0] >= 180 || math.Abs(pos[1]) > 90 {
					t.Fatalf("%s: position %v is not [lng, lat]", z.ID, pos)
				}
			}
		}
	}
}
