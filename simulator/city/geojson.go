package city

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/geomatch/geomatch/internal/geo"
)

// MaxGeoJSONBytes bounds a road file.
const MaxGeoJSONBytes = 256 << 20

// maxFileNodes bounds the intersections of a road file.
const maxFileNodes = 5_000_000

// geoJSON is the part of a GeoJSON FeatureCollection the loader reads.
type geoJSON struct {
	Type     string `json:"type"`
	Features []struct {
		Type     string `json:"type"`
		Geometry struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		} `json:"geometry"`
		Properties map[string]any `json:"properties"`
	} `json:"features"`
}

// LoadGeoJSON reads a road network from a GeoJSON FeatureCollection of
// LineString (or MultiLineString) features, coordinates [lng, lat]. Each
// feature's properties may set "class" (or OpenStreetMap's "highway":
// motorway, primary, residential, ...), "maxspeed" or "speed_kmh" (km/h)
// and "oneway" (true, "yes" or "1"). Points that are within a meter of
// each other become one intersection; consecutive points of a line are
// joined. Only the largest strongly connected part is kept. The frame's
// origin is the middle of the bounding box (across the antimeridian when
// the roads straddle it).
func LoadGeoJSON(name string, r io.Reader, speeds Speeds) (*Graph, error) {
	if speeds == (Speeds{}) {
		speeds = DefaultSpeeds()
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxGeoJSONBytes+1))
	if err != nil {
		return nil, fmt.Errorf("road file %s: %w", name, err)
	}
	if len(data) > MaxGeoJSONBytes {
		return nil, fmt.Errorf("road file %s: larger than %d bytes", name, MaxGeoJSONBytes)
	}
	var fc geoJSON
	if err := json.Unmarshal(data, &fc); err != nil {
		return nil, fmt.Errorf("road file %s: %w", name, err)
	}
	if fc.Type != "FeatureCollection" {
		return nil, fmt.Errorf("road file %s: type %q, want FeatureCollection", name, fc.Type)
	}
	type road struct {
		line   [][2]float64 // lng, lat
		class  Class
		speed  float64
		oneWay bool
	}
	var roads []road
	for i, f := range fc.Features {
		var lines [][][2]float64
		switch f.Geometry.Type {
		case "LineString":
			var l [][2]float64
			if err := json.Unmarshal(f.Geometry.Coordinates, &l); err != nil {
				return nil, fmt.Errorf("road file %s: feature %d: coordinates: %w", name, i, err)
			}
			lines = append(lines, l)
		case "MultiLineString":
			if err := json.Unmarshal(f.Geometry.Coordinates, &lines); err != nil {
				return nil, fmt.Errorf("road file %s: feature %d: coordinates: %w", name, i, err)
			}
		default:
			continue // points, polygons: not roads
		}
		c := Street
		if s, ok := f.Properties["class"].(string); ok {
			c = ParseClass(s)
		} else if s, ok := f.Properties["highway"].(string); ok {
			c = ParseClass(s)
		}
		speed := speeds[c]
		for _, key := range []string{"speed_kmh", "maxspeed"} {
			if v, ok := number(f.Properties[key]); ok && v > 0 && v < 300 {
				speed = v
				break
			}
		}
		oneWay := false
		switch v := f.Properties["oneway"].(type) {
		case bool:
			oneWay = v
		case string:
			oneWay = v == "yes" || v == "1" || v == "true"
		}
		for _, l := range lines {
			for _, p := range l {
				if err := (geo.LatLng{Lat: p[1], Lng: p[0]}).Validate(); err != nil {
					return nil, fmt.Errorf("road file %s: feature %d: %w", name, i, err)
				}
			}
			roads = append(roads, road{line: l, class: c, speed: speed, oneWay: oneWay})
		}
	}
	if len(roads) == 0 {
		return nil, fmt.Errorf("road file %s: no LineString roads", name)
	}
	origin, err := boxCenter(roads[0].line, func(yield func([2]float64) bool) {
		for _, r := range roads {
			for _, p := range r.line {
				if !yield(p) {
					return
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("road file %s: %w", name, err)
	}
	b := NewBuilder(name, NewFrame(origin))
	// Snap points to a 1 m lattice so shared vertices become one node.
	type key struct{ x, y int64 }
	ids := map[key]NodeID{}
	node := func(p [2]float64) (NodeID, error) {
		x, y := b.frame.XY(geo.LatLng{Lat: p[1], Lng: p[0]})
		k := key{int64(math.Round(x)), int64(math.Round(y))}
		if id, ok := ids[k]; ok {
			return id, nil
		}
		if len(ids) >= maxFileNodes {
			return 0, fmt.Errorf("more than %d intersections", maxFileNodes)
		}
		id := b.AddNode(x, y)
		ids[k] = id
		return id, nil
	}
	for i, r := range roads {
		var prev NodeID = -1
		for _, p := range r.line {
			id, err := node(p)
			if err != nil {
				return nil, fmt.Errorf("road file %s: %w", name, err)
			}
			if prev >= 0 {
				if err := b.AddRoad(prev, id, r.class, r.speed, r.oneWay); err != nil {
					return nil, fmt.Errorf("road file %s: road %d: %w", name, i, err)
				}
			}
			prev = id
		}
	}
	g, _, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("road file %s: %w", name, err)
	}
	return g, nil
}

// boxCenter returns the middle of the points' bounding box, taking
// longitudes relative to the first point so a box across the antimeridian
// is not the whole world. It refuses boxes wider than 5° or near a pole.
func boxCenter(first [][2]float64, all func(func([2]float64) bool)) (geo.LatLng, error) {
	if len(first) == 0 {
		return geo.LatLng{}, errors.New("a road has no points")
	}
	ref := first[0][0]
	minLat, maxLat := math.Inf(1), math.Inf(-1)
	minD, maxD := math.Inf(1), math.Inf(-1)
	for p := range all {
		d := WrapLng(p[0] - ref)
		minD, maxD = min(minD, d), max(maxD, d)
		minLat, maxLat = min(minLat, p[1]), max(maxLat, p[1])
	}
	if maxD-minD > 5 || maxLat-minLat > 5 {
		return geo.LatLng{}, fmt.Errorf("the roads span %.1f° x %.1f°, at most 5° (one city)", maxLat-minLat, maxD-minD)
	}
	c := geo.LatLng{Lat: (minLat + maxLat) / 2, Lng: WrapLng(ref + (minD+maxD)/2)}
	if math.Abs(c.Lat) > 85 {
		return geo.LatLng{}, fmt.Errorf("the roads lie at %.1f° latitude, too close to a pole for a planar city (at most 85°)", c.Lat)
	}
	return c, nil
}

// number reads a JSON number or a numeric string ("50", "50 km/h" is not).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
