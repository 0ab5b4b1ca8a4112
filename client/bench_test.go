package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// BenchmarkDriverSessionSendLocation: one driver session streaming
// positions to the in-process cluster, with acknowledgements and the
// replay buffer (the default) and without (NoAcks, as the simulator and
// the load generator run). It reports the acks the router sent per 1,000
// updates.
func BenchmarkDriverSessionSendLocation(b *testing.B) {
	for _, bc := range []struct {
		name   string
		noAcks bool
	}{{"acks", false}, {"no-acks", true}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := client.Dial(routerAddr, client.Insecure())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			acks := 0
			sess, err := c.ConnectDriver(ctx, client.DriverConfig{DriverID: "bench-" + bc.name, NoAcks: bc.noAcks,
				OnEvent: func(ev *geomatchv1.DriverEvent) {
					if ev.GetUpdatesAck() != nil {
						acks++
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			ts := time.Now().UnixMilli() - int64(b.N) - 1000
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				u := &geomatchv1.LocationUpdate{Position: &geomatchv1.LatLng{Lat: 47.37 + float64(i%1000)*1e-5, Lng: 8.54}, TimestampMs: ts + int64(i)}
				if err := sess.SendLocation(u); err != nil {
					b.Fatal(err)
				}
			}
			if !bc.noAcks {
				if err := sess.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := sess.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(acks)*1000/float64(b.N), "acks/1k-updates")
		})
	}
}
