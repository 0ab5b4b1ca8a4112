package resp

import (
	"testing"
	"time"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// BenchmarkParseReply is the RESP door's own share of a NEARBY: parsing
// the command and writing a 10-driver reply (the fleet search between them
// is the gRPC API's).
func BenchmarkParseReply(b *testing.B) {
	cmd := args("NEARBY fleet LIMIT 10 POINT 40.7580 -73.9855 2000")
	found := make([]*matcherv1.Neighbor, 10)
	for i := range found {
		found[i] = &matcherv1.Neighbor{DriverId: "bench-0001234", Lat: 40.7580 + float64(i)*1e-4, Lng: -73.9855, DistanceM: float64(i) * 11.1}
	}
	for _, tc := range []struct {
		name string
		f    Format
	}{{"resp", FormatRESP}, {"json", FormatJSON}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			out := make([]byte, 0, 4096)
			for b.Loop() {
				req, err := Parse(cmd)
				if err != nil {
					b.Fatal(err)
				}
				out = AppendSearch(out[:0], tc.f, &req.Search, found, 0, time.Microsecond)
			}
		})
	}
}
