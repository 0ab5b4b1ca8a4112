package simulator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/uber/h3-go/v4"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/city"
	"github.com/geomatch/geomatch/simulator/demand"
)

// streamStadium is the randomness of the stadium scenario: who goes, and
// where they circulate.
const streamStadium = 0x7374616469756d00 // "stadium"

// Stadium is the moving hot spot scenario (`geomatch sim --scenario
// stadium`): while the window runs from From to To, Share of the fleet
// drives to the shard of the city's stadium and circulates among its
// intersections, and Share of the ride requests start there; then the
// event is over and they disperse (roam the city again). One shard
// carries a third of the cluster's load for a while: what automatic
// splitting is for.
type Stadium struct {
	// Share is the part of the fleet, and of the ride requests, that
	// converges; default 0.3.
	Share float64
	// From and To are when the hot spot forms and disperses, as fractions
	// of the window (wall time: the service's own timers, which decide
	// splits and merges, run on the wall clock); default 0.15 and 0.55.
	From, To float64
	// RadiusM bounds the hot spot around the stadium: the intersections
	// of the stadium's shard (the ring's shard resolution, read with
	// AdminService.GetRing) within RadiusM of it. Default 2,000 m, more
	// than a resolution-7 shard's reach, so the whole shard fills.
	RadiusM float64
}

// DefaultStadium returns the defaults documented on Stadium.
func DefaultStadium() Stadium { return Stadium{Share: 0.3, From: 0.15, To: 0.55, RadiusM: 2000} }

// validate checks s, naming the field.
func (s Stadium) validate() error {
	var errs []error
	if !(s.Share > 0 && s.Share <= 1) {
		errs = append(errs, fmt.Errorf("stadium share: %v, want within (0, 1]", s.Share))
	}
	if !(s.From >= 0 && s.From < s.To && s.To <= 1) {
		errs = append(errs, fmt.Errorf("stadium from %v to %v: want 0 <= from < to <= 1 (fractions of the window)", s.From, s.To))
	}
	if !(s.RadiusM >= 50 && s.RadiusM <= 20000) {
		errs = append(errs, fmt.Errorf("stadium radius: %v m, want within [50, 20000]", s.RadiusM))
	}
	return errors.Join(errs...)
}

// stadiumRun is the scenario during one run. Each driver's entries are
// touched only by the worker that owns the driver.
type stadiumRun struct {
	cfg      Stadium
	g        *city.Graph
	x, y     float64       // the stadium, frame meters
	nodes    []city.NodeID // intersections within RadiusM
	hot      []bool        // the driver goes
	steering []bool        // the driver is heading there or circulating
	target   []city.NodeID
	rng      []*rand.Rand
	// from and to are the wall times the event starts and ends (set when
	// the window starts, before the workers run).
	from, to time.Time
}

// newStadiumRun prepares the scenario for e's city and fleet, its hot spot
// in the stadium's cell at resolution shardRes (0: unknown, the disc of
// RadiusM alone); nil without a scenario.
func newStadiumRun(e *engine, shardRes int) (*stadiumRun, error) {
	if e.cfg.Stadium == nil {
		return nil, nil
	}
	s := &stadiumRun{cfg: *e.cfg.Stadium, g: e.g}
	found := false
	for _, z := range city.Zones(e.g) {
		if z.Kind == city.ZoneStadium {
			s.x, s.y = e.g.Frame.XY(z.Center)
			found = true
			break
		}
	}
	if !found {
		return nil, errors.New("simulator: stadium scenario: the city has no stadium")
	}
	var shard h3.Cell
	if shardRes > 0 {
		p := e.g.Frame.LatLng(s.x, s.y)
		shard = h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, shardRes)
	}
	for i, n := range e.g.Nodes {
		if math.Hypot(n.X-s.x, n.Y-s.y) > s.cfg.RadiusM || len(n.Out) == 0 {
			continue
		}
		if shard != 0 && h3.LatLngToCell(h3.LatLng{Lat: n.Pos.Lat, Lng: n.Pos.Lng}, shardRes) != shard {
			continue
		}
		s.nodes = append(s.nodes, city.NodeID(i))
	}
	if len(s.nodes) < 2 {
		return nil, fmt.Errorf("simulator: stadium scenario: %d intersections within %v m of the stadium in its shard, want at least 2 (a larger radius?)", len(s.nodes), s.cfg.RadiusM)
	}
	n := e.cfg.Drivers
	s.hot, s.steering, s.target, s.rng = make([]bool, n), make([]bool, n), make([]city.NodeID, n), make([]*rand.Rand, n)
	for i := range n {
		rng := entityRNG(e.cfg.Seed, streamStadium, i)
		s.hot[i] = rng.Float64() < s.cfg.Share
		if s.hot[i] {
			s.rng[i] = rng
		}
	}
	return s, nil
}

// start sets the event's wall times from the window's start.
func (s *stadiumRun) start(t0 time.Time, window time.Duration) {
	if s == nil {
		return
	}
	s.from = t0.Add(time.Duration(s.cfg.From * float64(window)))
	s.to = t0.Add(time.Duration(s.cfg.To * float64(window)))
}

// events are the demand's hot spot, in simulated seconds since the window
// started.
func (s *stadiumRun) events(window time.Duration, speedup float64) []demand.Event {
	if s == nil {
		return nil
	}
	w := window.Seconds() * speedup
	// The requests spread like the drivers: around their intersections'
	// center, within about their spread.
	var cx, cy, spread float64
	for _, n := range s.nodes {
		cx += s.g.Nodes[n].X / float64(len(s.nodes))
		cy += s.g.Nodes[n].Y / float64(len(s.nodes))
	}
	for _, n := range s.nodes {
		spread = max(spread, math.Hypot(s.g.Nodes[n].X-cx, s.g.Nodes[n].Y-cy))
	}
	return []demand.Event{{Spot: demand.Spot{X: cx, Y: cy, SigmaM: max(spread/2, 20), Weight: 1}, Share: s.cfg.Share, From: s.cfg.From * w, To: s.cfg.To * w}}
}

// steer runs at each report of driver d (from its worker): during the
// event an idle driver of the stadium's share heads there and circulates
// among its intersections; after it, such a driver roams again. Drivers
// on trips are left alone and come back once free.
func (s *stadiumRun) steer(g *city.Graph, d *driver, now time.Time) {
	if s == nil || !s.hot[d.idx] || d.state != idle {
		return
	}
	if now.Before(s.from) || !now.Before(s.to) {
		if s.steering[d.idx] {
			s.steering[d.idx] = false
			d.mv.Roam()
		}
		return
	}
	if s.steering[d.idx] && d.mv.Routed() {
		x, y := g.XY(d.mv.Loc())
		t := g.Nodes[s.target[d.idx]]
		if math.Hypot(x-t.X, y-t.Y) > 30 {
			return // on its way
		}
	}
	rng := s.rng[d.idx]
	for range 4 { // a target that is reachable and not where it stands
		t := s.nodes[rng.IntN(len(s.nodes))]
		r, ok := g.Route(d.mv.Loc(), t)
		if !ok || len(r.Edges) == 0 {
			continue
		}
		d.mv.Follow(r)
		s.steering[d.idx], s.target[d.idx] = true, t
		return
	}
}

// shardRes is the target's shard resolution (AdminService.GetRing), 0
// when it cannot be read or the run has no stadium.
func (e *engine) shardRes(ctx context.Context) int {
	if e.cfg.Stadium == nil || e.admin == nil {
		return 0
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ring, err := e.admin.GetRing(cctx, &geomatchv1.GetRingRequest{})
	if err != nil {
		e.warnOnce("stadium-ring", "the stadium's hot spot is a disc: the ring's shard resolution is unknown", "err", err)
		return 0
	}
	return int(ring.GetShardResolution())
}
