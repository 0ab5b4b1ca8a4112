package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/ui/mapview"
)

// Bounds of the fences overlay.
const (
	// maxFenceOverlay bounds the fences drawn: two pages of ListFences.
	maxFenceOverlay = 2000
	// maxFenceVertices bounds the vertices drawn over all fences, so that
	// a few huge polygons cannot make the overlay megabytes long.
	maxFenceVertices = 200000
	// circleVertices approximate a circular fence.
	circleVertices = 48
)

// fences answers the fences overlay: the fences of a set (every set when
// none is given), through FenceService.ListFences with the caller's token
// (admin, as the API requires), as a polygons overlay.
func (h *Handler) fences(w http.ResponseWriter, r *http.Request) {
	token := ""
	if v := r.Header.Get("Authorization"); v != "" {
		t, ok := bearer(v)
		if !ok {
			httpError(w, http.StatusUnauthorized, "Authorization: want `Bearer <token>`")
			return
		}
		token = t
	}
	req := &geomatchv1.ListFencesRequest{Set: r.URL.Query().Get("set"), PageSize: 1000}
	var all []*geomatchv1.Fence
	for len(all) < maxFenceOverlay {
		resp, err := h.src.Call(r.Context(), remoteAddr(r.RemoteAddr), token, geomatchv1.FenceService_ListFences_FullMethodName, req)
		if err != nil {
			grpcError(w, err)
			return
		}
		page, ok := resp.(*geomatchv1.ListFencesResponse)
		if !ok {
			httpError(w, http.StatusInternalServerError, fmt.Sprintf("ListFences answered a %T", resp))
			return
		}
		all = append(all, page.GetFences()...)
		if page.GetNextPageToken() == "" {
			break
		}
		req.PageToken = page.GetNextPageToken()
	}
	writeJSON(w, http.StatusOK, fenceOverlay(all))
}

// fenceOverlay draws fences as dashed polygons titled with their id and
// set; circles become 48-gons. A fence whose shape cannot be read is left
// out; beyond maxFenceOverlay fences or maxFenceVertices vertices the rest
// are left out, and the overlay's name says so.
func fenceOverlay(fences []*geomatchv1.Fence) mapview.Overlay {
	ov := mapview.Overlay{Name: "fences", Kind: "polygons", Color: "#c2185b", Width: 1.5, Dash: "5 3", Opacity: 0.06}
	vertices, left := 0, 0
	for _, f := range fences {
		if len(ov.Polygons) >= maxFenceOverlay || vertices >= maxFenceVertices {
			left++
			continue
		}
		title := fmt.Sprintf("fence %s (set %s)", f.GetFenceId(), f.GetSet())
		var polys [][][][2]float64
		switch {
		case f.GetCircle() != nil:
			c := f.GetCircle()
			polys = [][][][2]float64{{circle(c.GetCenter().GetLat(), c.GetCenter().GetLng(), c.GetRadiusM())}}
		case f.GetGeojson() != "":
			var err error
			if polys, err = geojsonRings(f.GetGeojson()); err != nil {
				left++
				continue
			}
		}
		for _, rings := range polys {
			for _, ring := range rings {
				vertices += len(ring)
			}
			ov.Polygons = append(ov.Polygons, mapview.Polygon{Rings: rings, Title: title})
		}
	}
	if left > 0 {
		ov.Name = fmt.Sprintf("fences (%d not drawn)", left)
	}
	return ov
}

// geojsonRings reads a stored fence's GeoJSON Polygon or MultiPolygon as
// polygons of rings of [lat, lng] (GeoJSON has [lng, lat]).
func geojsonRings(doc string) ([][][][2]float64, error) {
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal([]byte(doc), &g); err != nil {
		return nil, err
	}
	var polys [][][][2]float64
	switch g.Type {
	case "Polygon":
		var p [][][2]float64
		if err := json.Unmarshal(g.Coordinates, &p); err != nil {
			return nil, err
		}
		polys = [][][][2]float64{p}
	case "MultiPolygon":
		if err := json.Unmarshal(g.Coordinates, &polys); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("geojson type %q", g.Type)
	}
	for _, p := range polys {
		for _, ring := range p {
			for i, v := range ring {
				ring[i] = [2]float64{mapview.Round(v[1]), mapview.Round(v[0])}
			}
		}
	}
	return polys, nil
}

// circle approximates a circle of radius m around (lat, lng) by
// circleVertices vertices (a local flat approximation: fences are a few
// kilometres wide at most).
func circle(lat, lng, radiusM float64) [][2]float64 {
	const metresPerDegree = 111195.0
	out := make([][2]float64, circleVertices)
	k := math.Max(math.Cos(lat*math.Pi/180), 0.01)
	for i := range out {
		a := 2 * math.Pi * float64(i) / circleVertices
		out[i] = [2]float64{
			mapview.Round(lat + radiusM*math.Sin(a)/metresPerDegree),
			mapview.Round(lng + radiusM*math.Cos(a)/(metresPerDegree*k)),
		}
	}
	return out
}
