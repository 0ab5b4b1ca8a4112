package assign

import (
	"errors"
	"fmt"
	"math"
)

// MaxSize is the largest number of riders, and of drivers, Optimal solves
// in one call. The solver's work grows with the cube and its memory with the
// square of a connected group's size; a batch window per shard stays far
// below this.
const MaxSize = 2000

// ErrTooLarge is the error Optimal returns (wrapped) for more than MaxSize
// riders or drivers; a caller can fall back to Greedy.
var ErrTooLarge = errors.New("assignment problem too large")

// ErrInvalidEdge is the error Validate and Optimal return (wrapped) for an
// edge with an index out of range or a cost that is not a finite number >= 0.
var ErrInvalidEdge = errors.New("invalid edge")

// Edge is a candidate pairing: rider Rider (an index into the riders, in
// [0, riders)) with driver Driver (an index into the drivers) at Cost, the
// pickup distance in meters (finite, >= 0). Only the given pairs may be
// matched; when a pair is given twice its cheaper edge counts.
type Edge struct {
	Rider, Driver int
	Cost          float64
}

// Pair is one chosen pairing: rider Rider gets driver Driver at Cost.
type Pair struct {
	Rider, Driver int
	Cost          float64
}

// Total returns the sum of the pairs' costs.
func Total(ps []Pair) float64 {
	var sum float64
	for _, p := range ps {
		sum += p.Cost
	}
	return sum
}

// Validate checks a problem: riders and drivers in [0, MaxSize], every
// edge's indexes in range and its cost a finite number >= 0. The error
// names the first bad edge.
func Validate(riders, drivers int, edges []Edge) error {
	if riders < 0 || drivers < 0 {
		return fmt.Errorf("assign %d riders to %d drivers: negative count", riders, drivers)
	}
	if riders > MaxSize || drivers > MaxSize {
		return fmt.Errorf("assign %d riders to %d drivers: %w (at most %d of each)", riders, drivers, ErrTooLarge, MaxSize)
	}
	for i, e := range edges {
		if err := checkEdge(riders, drivers, e); err != nil {
			return fmt.Errorf("%w %d (rider %d, driver %d, cost %v): %s", ErrInvalidEdge, i, e.Rider, e.Driver, e.Cost, err)
		}
	}
	return nil
}

// checkEdge says what is wrong with e, or returns nil.
func checkEdge(riders, drivers int, e Edge) error {
	switch {
	case e.Rider < 0 || e.Rider >= riders:
		return fmt.Errorf("rider outside [0, %d)", riders)
	case e.Driver < 0 || e.Driver >= drivers:
		return fmt.Errorf("driver outside [0, %d)", drivers)
	case !(e.Cost >= 0) || math.IsInf(e.Cost, 1):
		return errors.New("cost is not a finite number >= 0")
	}
	return nil
}
