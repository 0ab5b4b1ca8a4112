package simulator

import (
	"math"
	"math/rand/v2"

	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/report"
)

// streamWarm is the warm start's source of randomness.
const streamWarm = 0x7761726d00000000 // "warm"

// Warm start bounds.
const (
	// warmSamples is how many of the demand's trips are routed to learn a
	// trip's length.
	warmSamples = 200
	// warmMaxBusy caps the share of the online fleet put on trips.
	warmMaxBusy = 0.9
	// streetDetour is how much longer a drive on the streets is than the
	// straight line (4/π on a grid).
	streetDetour = 4 / math.Pi
)

// steadyBusy is how many of online drivers are busy in the steady state,
// by Little's law: requests arrive at ratePerS and each keeps a driver
// busy for a pickup drive plus a trip of tripS on average. The pickup
// drive is the straight-line distance to the nearest of the available
// drivers spread evenly over areaM2 (half the inverse square root of
// their density), times streetDetour, at speedMS; it grows as fewer
// drivers are free, so the count is the fixed point, found by damped
// iteration. The result is at most warmMaxBusy of the fleet.
func steadyBusy(ratePerS, tripS float64, online int, areaM2, speedMS float64) int {
	if !(ratePerS > 0) || online <= 0 || !(speedMS > 0) || !(areaM2 > 0) {
		return 0
	}
	ceiling := warmMaxBusy * float64(online)
	busy := 0.0
	for range 100 {
		free := max(float64(online)-busy, 1)
		pickupS := streetDetour * 0.5 / math.Sqrt(free/areaM2) / speedMS
		busy = (busy + min(ratePerS*(tripS+pickupS), ceiling)) / 2
	}
	return int(math.Round(busy))
}

// residual draws how much is left of a trip in progress at a random
// moment: a trip picked with probability proportional to its length (a
// random moment falls in long trips more often), and a uniform share of
// it. Those residuals end at the rate new trips would have ended, so the
// busy count stays level while the first real trips take over. It returns
// the index of the trip picked and the time left.
func residual(rng *rand.Rand, lengths []float64) (int, float64) {
	total := 0.0
	for _, l := range lengths {
		total += l
	}
	if !(total > 0) {
		return 0, 0
	}
	k := rng.Float64() * total
	i := 0
	for ; i < len(lengths)-1; i++ {
		if k < lengths[i] {
			break
		}
		k -= lengths[i]
	}
	return i, rng.Float64() * lengths[i]
}

// warmStart puts a share of the online drivers on carried-over trips when
// the window opens, so the run starts near its steady state rather than
// with every driver free: each drives towards a drop-off drawn from the
// demand, reported as on a trip, and is free again after a residual trip
// time (see residual). The service has no such trips; they end without a
// word to it and count apart (Run.CarriedTrips, Window.CarriedDropOffs).
// It runs before the workers start and returns the trips it started.
func (e *engine) warmStart() int64 {
	if !e.cfg.WarmStart {
		return 0
	}
	g := e.g
	rng := entityRNG(e.cfg.Seed, streamWarm, 0)
	type sampleTrip struct {
		dropoff city.NodeID
		secs    float64
	}
	var trips []sampleTrip
	var meters, secs float64
	for range warmSamples {
		px, py, dx, dy := e.demand.Trip(rng, e.cfg.MinTripM)
		pn, dn := g.Nearest(px, py), g.Nearest(dx, dy)
		out := g.Nodes[pn].Out
		if pn == dn || len(out) == 0 {
			continue
		}
		r, ok := g.Route(city.Loc{Edge: out[0]}, dn)
		if !ok || r.Seconds <= 0 {
			continue
		}
		trips = append(trips, sampleTrip{dropoff: dn, secs: r.Seconds})
		meters += r.Meters
		secs += r.Seconds
	}
	if len(trips) == 0 || secs <= 0 {
		return 0
	}
	var online []*driver
	for _, d := range e.drivers {
		if d.connected && d.online {
			online = append(online, d)
		}
	}
	box := city.CityBox(g)
	tripS := secs / float64(len(trips))
	busy := steadyBusy(e.demand.Rate(0), tripS, len(online), box.LengthM*box.WidthM, meters/secs)
	if busy == 0 {
		return 0
	}
	// The busy time of a trip: its drive and the mean pickup drive, which
	// steadyBusy implies (busy = rate × (trip + pickup)).
	pickupS := max(float64(busy)/e.demand.Rate(0)-tripS, 0)
	lengths := make([]float64, len(trips))
	for i, t := range trips {
		lengths[i] = t.secs + pickupS
	}
	share := float64(busy) / float64(len(online))
	var carried int64
	for _, d := range online {
		drng := entityRNG(e.cfg.Seed, streamWarm, d.idx+1)
		if drng.Float64() >= share {
			continue
		}
		i, left := residual(drng, lengths)
		r, ok := g.Route(d.mv.Loc(), trips[i].dropoff)
		if !ok {
			continue
		}
		end := min(left, r.Seconds/d.mv.Factor)
		if end <= 0 {
			continue
		}
		d.gen++
		d.trip = &driving{carried: true, dropoff: trips[i].dropoff}
		d.w.setState(d, toDropoff)
		d.mv.Follow(r)
		d.w.schedule(timer{at: e.clock.wall(end), d: d, kind: tCarriedEnd, gen: d.gen})
		// The part of the route driven until the carried trip ends.
		e.carriedLegs = append(e.carriedLegs, report.Leg{FromSimS: 0, ToSimS: end, Meters: r.Meters * end / (r.Seconds / d.mv.Factor)})
		carried++
	}
	return carried
}
