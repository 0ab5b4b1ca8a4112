package report

import (
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/ui/mapview"
)

// outcomeColors colour the pickups by outcome.
var outcomeColors = map[string]string{
	"assigned": "#009e73", "no_driver": "#d55e00", "gave_up": "#e69f00", "other": "#777777",
}

// streetStyles draw the road classes, slowest first.
var streetStyles = []struct {
	name, color string
	width       float64
}{
	{"streets", "#b8b8b0", 0.6}, {"arterials", "#8a8a80", 1.2}, {"highways", "#555550", 2},
}

// cityMap draws the city with the live shard map's renderer
// (ui/mapview): shards holding drivers coloured by owner and shaded by
// drivers, and as overlays the streets, the run's zones (dashed) and the
// sampled pickups by outcome. The cluster has one drawing, here and on
// the router's /ui/ page.
func cityMap(r *Result, g *city.Graph) template.HTML {
	if g == nil {
		return ""
	}
	html, err := mapview.Embed("city-map", citySnapshot(r, g))
	if err != nil {
		return template.HTML(template.HTMLEscapeString("map: " + err.Error()))
	}
	return html
}

// citySnapshot is the map document of a run: a static snapshot.
func citySnapshot(r *Result, g *city.Graph) *mapview.Snapshot {
	s := &mapview.Snapshot{Version: mapview.Version, Loads: []string{mapview.LoadDrivers}}
	owners := shardOwners(r)
	ids := make([]string, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	counts := map[string]int{}
	var drivers = map[string]int64{}
	for _, sh := range r.Shards {
		cell := h3.Cell(h3.IndexFromString(sh.Cell))
		if !cell.IsValid() || sh.Drivers == 0 {
			// Shards with only query load (searches reach past the city)
			// would hide the city's own.
			continue
		}
		b, err := mapview.Boundary(cell)
		if err != nil {
			continue
		}
		s.Shards = append(s.Shards, mapview.Shard{Cell: sh.Cell, Res: cell.Resolution(), Owner: sh.Owner, Drivers: sh.Drivers, Boundary: b})
		counts[sh.Owner]++
		drivers[sh.Owner] += sh.Drivers
	}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, mapview.Node{ID: id, Color: hexColor(owners[id]), Shards: counts[id], Drivers: drivers[id]})
	}

	// Streets: one overlay per class.
	lines := make([][][][2]float64, len(streetStyles))
	for i, e := range g.Edges {
		if e.Twin != city.NoEdge && int(e.Twin) < i {
			continue // draw two-way roads once
		}
		if int(e.Class) >= len(lines) {
			continue
		}
		a, c := g.Nodes[e.From], g.Nodes[e.To]
		lines[e.Class] = append(lines[e.Class], [][2]float64{latLng(g.Frame.LatLng(a.X, a.Y)), latLng(g.Frame.LatLng(c.X, c.Y))})
	}
	for i, st := range streetStyles {
		if len(lines[i]) > 0 {
			s.Overlays = append(s.Overlays, mapview.Overlay{Name: st.name, Kind: "lines", Color: st.color, Width: st.width, Lines: lines[i]})
		}
	}

	// Zones: dashed outlines, their supply on hovering.
	if r.Zones != nil {
		if ov := zoneOverlay(r.Zones, g); len(ov.Polygons) > 0 {
			s.Overlays = append(s.Overlays, ov)
		}
	}

	// Pickups by outcome.
	byOutcome := map[string][][2]float64{}
	for _, p := range r.Pickups {
		o := p.Outcome
		if _, ok := outcomeColors[o]; !ok {
			o = "other"
		}
		byOutcome[o] = append(byOutcome[o], [2]float64{mapview.Round(p.Lat), mapview.Round(p.Lng)})
	}
	for _, o := range []string{"assigned", "no_driver", "gave_up", "other"} {
		if len(byOutcome[o]) > 0 {
			s.Overlays = append(s.Overlays, mapview.Overlay{Name: "pickups: " + o, Kind: "points", Color: outcomeColors[o], Radius: 2.5, Opacity: 0.75, Points: byOutcome[o]})
		}
	}
	return s
}

// zoneOverlay outlines the run's zones (the city's zones, matched by id),
// circles as 48-gons.
func zoneOverlay(zs *Zones, g *city.Graph) mapview.Overlay {
	byID := map[string]Zone{}
	for _, z := range zs.Zones {
		byID[z.ID] = z
	}
	ov := mapview.Overlay{Name: "zones", Kind: "polygons", Color: "#7a3e9d", Width: 1.5, Dash: "6 3", Opacity: 0.04}
	for _, cz := range city.Zones(g) {
		z, ok := byID[zs.Set+"/"+cz.ID]
		if !ok {
			continue
		}
		p := mapview.Polygon{Title: fmt.Sprintf("%s (%s): %.1f available on average, peak %d; %d enters, %d exits",
			z.Name, z.Kind, z.AvailableMean, z.AvailablePeak, z.Enters, z.Exits)}
		if cz.IsCircle() {
			p.Rings = [][][2]float64{circleRing(g.Frame, cz.Center, cz.RadiusM)}
		} else {
			for _, ring := range cz.Rings {
				var out [][2]float64
				for _, pt := range ring {
					out = append(out, latLng(pt))
				}
				p.Rings = append(p.Rings, out)
			}
		}
		ov.Polygons = append(ov.Polygons, p)
	}
	return ov
}

// circleRing approximates a circle by 48 vertices, in the city's frame.
func circleRing(f city.Frame, c geo.LatLng, radiusM float64) [][2]float64 {
	cx, cy := f.XY(c)
	out := make([][2]float64, 48)
	for i := range out {
		a := 2 * math.Pi * float64(i) / float64(len(out))
		out[i] = latLng(f.LatLng(cx+radiusM*math.Cos(a), cy+radiusM*math.Sin(a)))
	}
	return out
}

func latLng(p geo.LatLng) [2]float64 { return [2]float64{mapview.Round(p.Lat), mapview.Round(p.Lng)} }

// shardOwners assigns each owner holding drivers a colour, in owner order:
// the live map's owner colours.
func shardOwners(r *Result) map[string]color.RGBA {
	var ids []string
	for _, s := range r.Shards {
		if s.Drivers > 0 && !slices.Contains(ids, s.Owner) {
			ids = append(ids, s.Owner)
		}
	}
	slices.Sort(ids)
	out := map[string]color.RGBA{}
	for i, id := range ids {
		out[id] = parseHex(mapview.OwnerColor(i))
	}
	return out
}

// parseHex reads a "#rrggbb" colour.
func parseHex(s string) color.RGBA {
	var c color.RGBA
	c.A = 255
	if _, err := fmt.Sscanf(s, "#%02x%02x%02x", &c.R, &c.G, &c.B); err != nil {
		return color.RGBA{153, 153, 153, 255}
	}
	return c
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
