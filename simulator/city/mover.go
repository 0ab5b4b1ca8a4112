package city

import "math/rand/v2"

// Mover is a vehicle on the network. It follows a Route and stops at its
// end, or, without one, roams: at each intersection it takes a random
// segment onward (arterials and highways preferred, no U-turns unless the
// road ends).
type Mover struct {
	g   *Graph
	loc Loc
	// rest are the segments after loc.Edge still to drive on a route.
	rest []EdgeID
	// routed: following a route (stops at its end) rather than roaming.
	routed bool
	// there: the route is driven; the vehicle waits at its end.
	there bool
	// Factor scales every segment's speed for this vehicle (1: nominal).
	Factor float64
}

// NewMover returns a roaming vehicle at l at nominal speed.
func NewMover(g *Graph, l Loc) *Mover { return &Mover{g: g, loc: l, Factor: 1} }

// Loc returns where the vehicle is.
func (m *Mover) Loc() Loc { return m.loc }

// Routed reports whether the vehicle is following a route.
func (m *Mover) Routed() bool { return m.routed }

// Follow makes the vehicle drive r, which must start where it is (as
// Graph.Route from its Loc returns).
func (m *Mover) Follow(r Route) {
	m.loc = r.Start
	m.routed = true
	m.there = len(r.Edges) == 0
	if m.there {
		m.rest = m.rest[:0]
		return
	}
	m.rest = append(m.rest[:0], r.Edges[1:]...)
}

// Roam drops the route: the vehicle roams from here on.
func (m *Mover) Roam() {
	m.routed, m.there = false, false
	m.rest = m.rest[:0]
}

// Advance moves the vehicle for dt seconds. On a route it reports arrived
// once the route's end is reached (and stays there); roaming, it never
// arrives. rng draws roaming turns.
func (m *Mover) Advance(dt float64, rng *rand.Rand) (arrived bool) {
	if m.there {
		return true
	}
	for {
		e := &m.g.Edges[m.loc.Edge]
		v := e.SpeedMS * m.Factor
		left := (e.LengthM - m.loc.Offset) / v
		if dt < left {
			m.loc.Offset += dt * v
			return false
		}
		dt -= left
		m.loc.Offset = e.LengthM
		switch {
		case m.routed && len(m.rest) == 0:
			m.there = true
			return true
		case m.routed:
			m.loc = Loc{Edge: m.rest[0]}
			m.rest = m.rest[1:]
		default:
			m.loc = Loc{Edge: m.g.turn(m.loc.Edge, rng)}
		}
		if dt <= 0 {
			return false
		}
	}
}

// turn picks the segment a roaming vehicle takes after arriving on `in`:
// arterials and highways weigh three times a street, a U-turn is taken
// only at a dead end.
func (g *Graph) turn(in EdgeID, rng *rand.Rand) EdgeID {
	e := &g.Edges[in]
	outs := g.Nodes[e.To].Out
	total := 0
	for _, o := range outs {
		if o != e.Twin {
			total += turnWeight(g.Edges[o].Class)
		}
	}
	if total == 0 {
		if e.Twin != NoEdge {
			return e.Twin
		}
		return outs[rng.IntN(len(outs))]
	}
	k := rng.IntN(total)
	for _, o := range outs {
		if o == e.Twin {
			continue
		}
		k -= turnWeight(g.Edges[o].Class)
		if k < 0 {
			return o
		}
	}
	return outs[0] // not reached
}

func turnWeight(c Class) int {
	if c == Street {
		return 1
	}
	return 3
}
