package router_test

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/serve"
	"github.com/geomatch/geomatch/matcher"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// nycPoint is a uniform position over New York, the load generator's area.
func nycPoint(r *rand.Rand) geo.LatLng {
	return geo.LatLng{Lat: 40.55 + 0.4*r.Float64(), Lng: -74.10 + 0.4*r.Float64()}
}

// benchCluster is an in-process cluster (router and 3 matchers, each a gRPC
// server on loopback) loaded with a uniform fleet over New York.
type benchCluster struct {
	c      *cluster.Dev
	conn   *grpc.ClientConn
	riders geomatchv1.RiderServiceClient
}

// searches is the number of searches the matchers answered so far: the
// router's internal calls.
func (bc *benchCluster) searches() int64 {
	var n int64
	for _, node := range bc.c.Nodes {
		n += int64(node.Searches())
	}
	return n
}

// startBenchCluster starts the cluster and loads n drivers. internalGRPC
// makes the router call the matchers over loopback gRPC, as separate
// processes do, instead of in process; the benchmark's own client always
// has serve.DialOptions, like the load generator.
func startBenchCluster(b *testing.B, n int, internalGRPC bool) *benchCluster {
	b.Helper()
	bc := &benchCluster{}
	cfg := cluster.DevConfig{
		Matcher:      func(mc *matcher.Config) { mc.Index.TTL = time.Hour },
		InternalGRPC: internalGRPC,
	}
	c, err := cluster.StartDev(cfg)
	if err != nil {
		b.Fatalf("start cluster: %v", err)
	}
	b.Cleanup(func() {
		if err := c.Stop(); err != nil {
			b.Errorf("stop cluster: %v", err)
		}
	})
	conn, err := grpc.NewClient(c.RouterAddr, append(serve.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		b.Fatalf("dial router: %v", err)
	}
	b.Cleanup(func() { conn.Close() })
	bc.c, bc.conn, bc.riders = c, conn, geomatchv1.NewRiderServiceClient(conn)
	drivers := geomatchv1.NewDriverServiceClient(conn)
	r := rand.New(rand.NewPCG(1, uint64(n)))
	ts := time.Now().UnixMilli()
	for lo := 0; lo < n; lo += 5000 {
		req := &geomatchv1.UpdateLocationsRequest{}
		for i := lo; i < min(lo+5000, n); i++ {
			p := nycPoint(r)
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: "bench-" + strconv.Itoa(i),
				Position: &geomatchv1.LatLng{Lat: p.Lat, Lng: p.Lng}, TimestampMs: ts})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := drivers.UpdateLocations(ctx, req)
		cancel()
		if err != nil || len(resp.GetRejected()) > 0 {
			b.Fatalf("load: %v %v", err, resp.GetRejected())
		}
	}
	// Warm the route and region caches over the area, as a long-running
	// router has them.
	warm := rand.New(rand.NewPCG(5, 5))
	for range 5000 {
		if err := bc.query(warm); err != nil {
			b.Fatalf("warm-up query: %v", err)
		}
	}
	return bc
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ioSyscalls is the number of read and write system calls this process
// made so far (syscr + syscw of /proc/self/io), 0 where unknown.
func ioSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && (k == "syscr" || k == "syscw") {
			x, _ := strconv.ParseInt(v, 10, 64)
			n += x
		}
	}
	return n
}

// BenchmarkNearbyThroughGRPC: 10 nearest within 2 km through the public API
// of an in-process cluster of 100k drivers (client, router and matchers
// share the process), at client concurrency 1 and 32, with the router's
// connections to the matchers as the router makes them and with
// serve.DialOptions added. Reports the internal calls, the process CPU
// (client included) and the read and write system calls per query: on a
// machine shared with other work, CPU per query is steadier than time per
// query, and system calls per query are exact.
func BenchmarkNearbyThroughGRPC(b *testing.B) {
	const n = 100_000
	for _, internal := range []string{"in-process", "grpc"} {
		b.Run("internal="+internal, func(b *testing.B) {
			bc := startBenchCluster(b, n, internal == "grpc")
			benchNearbyThroughGRPC(b, bc, n)
		})
	}
}

// benchNearbyThroughGRPC runs the queries of BenchmarkNearbyThroughGRPC
// against bc at each concurrency.
func benchNearbyThroughGRPC(b *testing.B, bc *benchCluster, n int) {
	var seed atomic.Uint64
	for _, conc := range []int{1, 32} {
		b.Run(strconv.Itoa(n/1000)+"k/c="+strconv.Itoa(conc), func(b *testing.B) {
			b.ReportAllocs()
			calls0, cpu0, sys0 := bc.searches(), cpuTime(), ioSyscalls()
			if conc == 1 {
				r := rand.New(rand.NewPCG(seed.Add(1), 7))
				for b.Loop() {
					if err := bc.query(r); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				// RunParallel starts parallelism × GOMAXPROCS goroutines.
				b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(seed.Add(1), 7))
					for pb.Next() {
						if err := bc.query(r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(bc.searches()-calls0)/float64(b.N), "rpcs/op")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(ioSyscalls()-sys0)/float64(b.N), "rw-syscalls/op")
		})
	}
}

// query asks for the 10 nearest drivers within 2 km of a random point.
func (bc *benchCluster) query(r *rand.Rand) error {
	p := nycPoint(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := bc.riders.NearbyDrivers(ctx, &geomatchv1.NearbyDriversRequest{
		Position: &geomatchv1.LatLng{Lat: p.Lat, Lng: p.Lng}, Limit: 10, RadiusM: 2000})
	return err
}
