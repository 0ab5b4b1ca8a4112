package simulator

import (
	"fmt"
	"math"
	"time"

	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

// zoneLocator finds the zones holding a position: the district (they tile
// the city) and the place (airport, stadium, ...), with the service's own
// geometry (package fence), so a pickup lies in the zone whose fence
// counts it.
type zoneLocator struct {
	zones  []city.Zone
	shapes []interface{ Contains(geo.LatLng) bool }
}

// newZoneLocator builds the locator of zones; zones whose shapes do not
// parse are left out (never, for city.Zones).
func newZoneLocator(zones []city.Zone) (*zoneLocator, error) {
	l := &zoneLocator{zones: zones, shapes: make([]interface{ Contains(geo.LatLng) bool }, len(zones))}
	for i, z := range zones {
		var err error
		if z.IsCircle() {
			l.shapes[i], err = fence.NewCircle(z.Center, z.RadiusM)
		} else {
			l.shapes[i], err = fence.ParseGeoJSON(z.GeoJSON())
		}
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.ID, err)
		}
	}
	return l, nil
}

// locate returns the indexes of the district and the place holding the
// position (-1: none); the first match of each kind wins.
func (l *zoneLocator) locate(lat, lng float64) (zone, place int) {
	zone, place = -1, -1
	p := geo.LatLng{Lat: lat, Lng: lng}
	for i, z := range l.zones {
		isDistrict := z.Kind == city.ZoneDistrict
		if (isDistrict && zone >= 0) || (!isDistrict && place >= 0) || !l.shapes[i].Contains(p) {
			continue
		}
		if isDistrict {
			zone = i
		} else {
			place = i
		}
	}
	return zone, place
}

// infos names the zones for the report.
func (l *zoneLocator) infos() []report.ZoneInfo {
	out := make([]report.ZoneInfo, len(l.zones))
	for i, z := range l.zones {
		out[i] = report.ZoneInfo{ID: z.ID, Name: z.Name, Kind: z.Kind}
	}
	return out
}

// warmupFor is the warm-up applied to a window of simS simulated seconds:
// the one asked for, at most half the window; note says why it was cut.
func warmupFor(asked time.Duration, simS float64) (fromS float64, note string) {
	fromS = asked.Seconds()
	if half := simS / 2; fromS > half {
		note = fmt.Sprintf("The warm-up was cut from %v to %v (half of the %.1f simulated minutes); run longer for KPIs clear of the start.",
			asked, time.Duration(half*float64(time.Second)).Round(time.Second), simS/60)
		fromS = half
	}
	return fromS, note
}

// measure fills the result's measured window and its zones' KPIs.
func (e *engine) measure(res *report.Result, zones *zoneLocator) {
	m := e.m
	w := report.Window{
		FromSimS: m.fromSim, ToSimS: res.Run.SimS,
		Offers: m.winOffers.Load(), Accepted: m.winAccepts.Load(),
		DropOffs: m.winDropOffs.Load(), CarriedDropOffs: m.winCarriedDropOffs.Load(),
		ThinkS: m.thinkS.dist(),
	}
	facts := e.ledger.facts()
	trips := facts
	for _, l := range e.carriedLegs {
		trips = append(trips, report.TripFact{RequestedSimS: math.NaN(), Zone: -1, Place: -1, Ride: l})
	}
	w = report.Measure(w, trips, res.Series)
	res.Window = &w
	if zones != nil {
		res.ZoneKPIs = report.ZoneKPIs(zones.infos(), w, facts, res.Zones, e.cfg.Speedup)
	}
}
