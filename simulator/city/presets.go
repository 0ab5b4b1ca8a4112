package city

import (
	"slices"

	"github.com/geomatch/geomatch/internal/geo"
)

// Place is a named point of a city where demand concentrates (a station, a
// business district).
type Place struct {
	Name string
	Pos  geo.LatLng
	// SigmaM is the spread of requests around it, in meters.
	SigmaM float64
	// Weight is its share of demand relative to the other places.
	Weight float64
}

// Preset is a ready-made city: its street grid and its busy places.
type Preset struct {
	// Name is what --city takes.
	Name string
	// Description says what it is and what it exercises.
	Description string
	// Grid generates the streets.
	Grid GridSpec
	// Places are the demand hot spots.
	Places []Place
}

// Presets returns the built-in cities.
func Presets() []Preset {
	return []Preset{
		{
			Name:        "nyc",
			Description: "Manhattan-sized grid over New York (3.6 x 20 km, avenues at 29°, highways on both rivers)",
			Grid: GridSpec{
				Name: "nyc", Center: geo.LatLng{Lat: 40.7812, Lng: -73.9665},
				WidthM: 3600, LengthM: 20000, BearingDeg: 29,
				AvenueSpacingM: 300, StreetSpacingM: 160,
				ArterialAvenueEvery: 2, ArterialStreetEvery: 6, HighwayEdges: true,
				SpeedJitter: 0.25, Seed: 1,
			},
			Places: []Place{
				{"Times Square", geo.LatLng{Lat: 40.7580, Lng: -73.9855}, 500, 3},
				{"Grand Central", geo.LatLng{Lat: 40.7527, Lng: -73.9772}, 400, 2},
				{"Penn Station", geo.LatLng{Lat: 40.7506, Lng: -73.9935}, 400, 2},
				{"Financial District", geo.LatLng{Lat: 40.7075, Lng: -74.0113}, 700, 2},
				{"Union Square", geo.LatLng{Lat: 40.7359, Lng: -73.9911}, 500, 1},
				{"Upper East Side", geo.LatLng{Lat: 40.7736, Lng: -73.9566}, 900, 1},
				{"Columbia", geo.LatLng{Lat: 40.8075, Lng: -73.9626}, 600, 0.5},
			},
		},
		{
			Name:        "taveuni",
			Description: "small grid on Taveuni, Fiji, straddling the antimeridian (180°): shards, searches and the map on both sides",
			Grid: GridSpec{
				Name: "taveuni", Center: geo.LatLng{Lat: -16.80, Lng: 180},
				WidthM: 4000, LengthM: 9000, BearingDeg: 40,
				AvenueSpacingM: 250, StreetSpacingM: 250,
				ArterialAvenueEvery: 4, ArterialStreetEvery: 6, HighwayEdges: true,
				SpeedJitter: 0.3, Seed: 2,
			},
			Places: []Place{
				{"Waiyevo", geo.LatLng{Lat: -16.790, Lng: -179.985}, 500, 2},
				{"Somosomo", geo.LatLng{Lat: -16.775, Lng: -179.980}, 500, 2},
				{"Matei airstrip", geo.LatLng{Lat: -16.820, Lng: 179.995}, 400, 1},
			},
		},
		{
			Name:        "longyearbyen",
			Description: "compact grid at 78°N in Longyearbyen, Svalbard: longitude degrees a fifth as long as at the equator",
			Grid: GridSpec{
				Name: "longyearbyen", Center: geo.LatLng{Lat: 78.2232, Lng: 15.6267},
				WidthM: 2500, LengthM: 6000, BearingDeg: 125,
				AvenueSpacingM: 200, StreetSpacingM: 200,
				ArterialAvenueEvery: 3, ArterialStreetEvery: 5, HighwayEdges: true,
				SpeedJitter: 0.2, Seed: 3,
			},
			Places: []Place{
				{"Sentrum", geo.LatLng{Lat: 78.2232, Lng: 15.6469}, 400, 3},
				{"Airport", geo.LatLng{Lat: 78.2461, Lng: 15.4656}, 500, 1},
				{"Nybyen", geo.LatLng{Lat: 78.2090, Lng: 15.5870}, 400, 1},
			},
		},
	}
}

// PresetByName returns the preset named name.
func PresetByName(name string) (Preset, bool) {
	ps := Presets()
	i := slices.IndexFunc(ps, func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Preset{}, false
	}
	return ps[i], true
}

// PresetNames lists the preset names.
func PresetNames() []string {
	var out []string
	for _, p := range Presets() {
		out = append(out, p.Name)
	}
	return out
}
