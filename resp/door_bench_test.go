package resp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/internal/geo"
)

// BenchmarkNearbyThroughRESP is a NEARBY (10 nearest within 2 km of 20,000
// drivers over New York) through the RESP door of an in-process cluster,
// with go-redis on loopback: one at a time, and 16 per round trip. The
// allocations are the whole process's: client, door, fleet and matchers.
func BenchmarkNearbyThroughRESP(b *testing.B) {
	d := startDoorB(b)
	c := redis.NewClient(&redis.Options{Addr: d.addr, Protocol: 2, DisableIdentity: true, PoolSize: 4})
	defer c.Close()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	fleet := make([]driverAt, 20_000)
	for i := range fleet {
		fleet[i] = driverAt{id: fmt.Sprintf("bench-%05d", i), pos: geo.LatLng{Lat: 40.55 + 0.4*r.Float64(), Lng: -74.10 + 0.4*r.Float64()}}
	}
	pipe := c.Pipeline()
	for lo := 0; lo < len(fleet); lo += 1000 {
		var locs []*redis.GeoLocation
		for _, dr := range fleet[lo : lo+1000] {
			locs = append(locs, &redis.GeoLocation{Name: dr.id, Longitude: dr.pos.Lng, Latitude: dr.pos.Lat})
		}
		pipe.GeoAdd(ctx, "fleet", locs...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	query := func() []any {
		return []any{"NEARBY", "fleet", "LIMIT", 10, "POINT", 40.55 + 0.4*r.Float64(), -74.10 + 0.4*r.Float64(), 2000}
	}
	b.Run("c1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Do(ctx, query()...).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipeline16", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := c.Pipeline()
			for range 16 {
				p.Do(ctx, query()...)
			}
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(16*b.N), "ns/search")
	})
}
