package report

import (
	"fmt"
	"html"
	"image/color"
	"math"
	"slices"
	"strings"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/simulator/city"
)

// mapWidthPx is the map's width on the page.
const mapWidthPx = 900

// outcomeColors colour the pickups by outcome.
var outcomeColors = map[string]string{
	"assigned": "#009e73", "no_driver": "#d55e00", "gave_up": "#e69f00", "other": "#777777",
}

// citySVG draws the city: shards coloured by owner, the streets, and the
// sampled pickups by outcome.
//
// It is drawn by hand rather than with gonum/plot: the map is polygons and
// polylines in the city's own planar frame (which keeps a city across the
// antimeridian in one piece), every shard carries a <title> with its cell,
// owner and drivers for hovering, and one <path> per road class keeps a
// city of thousands of blocks small; a plotting library's axes, legends
// and per-shape styling would add nothing but bytes.
func citySVG(r *Result, g *city.Graph) string {
	if g == nil {
		return ""
	}
	margin := 300.0
	minX, minY, maxX, maxY := g.MinX-margin, g.MinY-margin, g.MaxX+margin, g.MaxY+margin
	scale := mapWidthPx / (maxX - minX)
	heightPx := (maxY - minY) * scale
	pt := func(x, y float64) (float64, float64) { return (x - minX) * scale, (maxY - y) * scale }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" class="map">`,
		mapWidthPx, heightPx, mapWidthPx, heightPx)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#f7f7f2"/>`)

	// Shards, coloured by owner.
	owners := shardOwners(r)
	b.WriteString(`<g class="shards" stroke="#ffffff" stroke-width="1.5">`)
	for _, s := range r.Shards {
		cell := h3.Cell(h3.IndexFromString(s.Cell))
		if !cell.IsValid() || s.Drivers == 0 {
			// Shards with only query load (searches reach past the city)
			// would hide the city's own.
			continue
		}
		var pts []string
		for _, v := range cell.Boundary() {
			x, y := g.Frame.XY(geo.LatLng{Lat: v.Lat, Lng: v.Lng})
			px, py := pt(x, y)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
		}
		fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="0.35"><title>%s: owner %s, %d drivers</title></polygon>`,
			strings.Join(pts, " "), hexColor(owners[s.Owner]), html.EscapeString(s.Cell), html.EscapeString(s.Owner), s.Drivers)
	}
	b.WriteString(`</g>`)

	// Streets: one path per class.
	var paths [3]strings.Builder
	for i, e := range g.Edges {
		if e.Twin != city.NoEdge && int(e.Twin) < i {
			continue // draw two-way roads once
		}
		a, c := g.Nodes[e.From], g.Nodes[e.To]
		x1, y1 := pt(a.X, a.Y)
		x2, y2 := pt(c.X, c.Y)
		if int(e.Class) < len(paths) {
			fmt.Fprintf(&paths[e.Class], "M%.1f %.1fL%.1f %.1f", x1, y1, x2, y2)
		}
	}
	for c, style := range []string{`stroke="#b8b8b0" stroke-width="0.6"`, `stroke="#8a8a80" stroke-width="1.2"`, `stroke="#555550" stroke-width="2"`} {
		if paths[c].Len() > 0 {
			fmt.Fprintf(&b, `<path class="%s" fill="none" %s d="%s"/>`, city.Class(c), style, paths[c].String())
		}
	}

	// Zones: dashed outlines, their supply on hovering.
	if r.Zones != nil {
		writeZoneOutlines(&b, r.Zones, g, pt, scale)
	}

	// Pickups by outcome.
	b.WriteString(`<g class="pickups" fill-opacity="0.75">`)
	radius := math.Max(1.5, 30*scale)
	for _, p := range r.Pickups {
		x, y := g.Frame.XY(geo.LatLng{Lat: p.Lat, Lng: p.Lng})
		px, py := pt(x, y)
		col, ok := outcomeColors[p.Outcome]
		if !ok {
			col = outcomeColors["other"]
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`, px, py, radius, col)
	}
	b.WriteString(`</g>`)

	// Scale bar: 1 km.
	km := 1000 * scale
	fmt.Fprintf(&b, `<g class="scale"><line x1="20" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000" stroke-width="2"/><text x="20" y="%.0f" font-size="12" font-family="sans-serif">1 km</text></g>`,
		heightPx-20, 20+km, heightPx-20, heightPx-26)
	b.WriteString(`</svg>`)
	return b.String()
}

// writeZoneOutlines draws the run's zones (the city's zones, matched by
// id) as dashed outlines with a <title> of their figures.
func writeZoneOutlines(b *strings.Builder, zs *Zones, g *city.Graph, pt func(x, y float64) (float64, float64), scale float64) {
	byID := map[string]Zone{}
	for _, z := range zs.Zones {
		byID[z.ID] = z
	}
	b.WriteString(`<g class="zones" fill="#7a3e9d" fill-opacity="0.04" stroke="#7a3e9d" stroke-width="1.5" stroke-dasharray="6 3">`)
	for _, cz := range city.Zones(g) {
		z, ok := byID[zs.Set+"/"+cz.ID]
		if !ok {
			continue
		}
		title := fmt.Sprintf("<title>%s (%s): %.1f available on average, peak %d; %d enters, %d exits</title>",
			html.EscapeString(z.Name), html.EscapeString(z.Kind), z.AvailableMean, z.AvailablePeak, z.Enters, z.Exits)
		if cz.IsCircle() {
			px, py := pt(g.Frame.XY(cz.Center))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%.1f">%s</circle>`, px, py, cz.RadiusM*scale, title)
			continue
		}
		var d strings.Builder
		for _, ring := range cz.Rings {
			for i, p := range ring {
				px, py := pt(g.Frame.XY(p))
				cmd := "L"
				if i == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f", cmd, px, py)
			}
			d.WriteString("Z")
		}
		fmt.Fprintf(b, `<path fill-rule="evenodd" d="%s">%s</path>`, d.String(), title)
	}
	b.WriteString(`</g>`)
}

// shardOwners assigns each owner a colour, in owner order.
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
		out[id] = palette[i%len(palette)]
	}
	return out
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
