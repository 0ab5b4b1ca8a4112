package matcher

import (
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/store"
)

// BenchmarkApplyBatch: Apply of batches of 1000 updates of 100k known
// drivers on a one-node ring, with positions written behind to an
// in-memory store: the matcher's whole ingest path below gRPC (ownership,
// index, write-behind queue). Reported per update.
func BenchmarkApplyBatch(b *testing.B) {
	src, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1", Weight: 1}}))
	if err != nil {
		b.Fatal(err)
	}
	m, _ := src.Current()
	cfg := DefaultConfig("a")
	cfg.Store = store.NewMemory()
	n, err := NewNode(cfg, src, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx := runNode(b, n)
	r := rand.New(rand.NewPCG(1, 1))
	const drivers, batch = 100_000, 1000
	var reqs []*matcherv1.ApplyRequest
	for lo := 0; lo < drivers; lo += batch {
		req := &matcherv1.ApplyRequest{Epoch: m.Epoch()}
		for i := lo; i < lo+batch; i++ {
			p := geo.LatLng{Lat: 40.55 + 0.4*r.Float64(), Lng: -74.10 + 0.4*r.Float64()}
			req.Updates = append(req.Updates, update(m, "driver-"+strconv.Itoa(i), p, 1))
		}
		reqs = append(reqs, req)
	}
	buf := &ApplyScratch{}
	for _, req := range reqs { // load
		if _, err := n.applyWire(ctx, req, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		req := reqs[i%len(reqs)]
		for _, u := range req.Updates {
			u.TimestampMs++
		}
		if _, err := n.applyWire(ctx, req, buf); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/update")
}
