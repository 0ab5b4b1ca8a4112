package simulator

import (
	"hash/fnv"
	"math/rand/v2"
)

// Streams of randomness: each entity draws from its own source, seeded by
// the run's seed, the kind of entity and its number, so one entity's draws
// never shift another's and the scenario is the same whatever the timing.
const (
	streamDriver   = 0x6472697665720000 // "driver"
	streamRider    = 0x7269646572000000 // "rider"
	streamArrivals = 0x6172726976616c73 // "arrivals"
	streamOffer    = 0x6f66666572000000 // "offer"
)

// entityRNG returns the random source of entity n of a kind.
func entityRNG(seed, kind uint64, n int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^kind, uint64(n)*0x9e3779b97f4a7c15+1))
}

// offerRNG returns the source of a driver's decision on one offer, so the
// same driver decides the same way on the same offer in every run.
func offerRNG(seed uint64, driver int, offerID string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(offerID))
	return rand.New(rand.NewPCG(seed^streamOffer^uint64(driver), h.Sum64()))
}

// uniform draws a value in [lo, hi].
func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
