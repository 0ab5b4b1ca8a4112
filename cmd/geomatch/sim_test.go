package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
	"github.com/geomatch/geomatch/events"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/simulator/report"
	"github.com/geomatch/geomatch/store"
	"github.com/geomatch/geomatch/trip"
)

// countingStore is the cluster's store with the server side's own counts:
// the trips it created, the trips it ever recorded with an assigned driver
// and the driver positions the matchers wrote behind (one per applied
// location update).
type countingStore struct {
	store.Store
	mu        sync.Mutex
	created   map[string]bool
	assigned  map[string]bool
	positions int
}

func newCountingStore() *countingStore {
	return &countingStore{Store: store.NewMemory(), created: map[string]bool{}, assigned: map[string]bool{}}
}

func (s *countingStore) CreateTrip(ctx context.Context, rec store.TripRecord) (store.TripRecord, bool, error) {
	out, created, err := s.Store.CreateTrip(ctx, rec)
	if err == nil && created {
		s.mu.Lock()
		s.created[rec.ID] = true
		s.mu.Unlock()
	}
	return out, created, err
}

func (s *countingStore) UpdateTrip(ctx context.Context, rec store.TripRecord) (store.TripRecord, error) {
	out, err := s.Store.UpdateTrip(ctx, rec)
	if err != nil {
		return out, err
	}
	if t, derr := trip.Unmarshal(rec.Data); derr == nil && t.Driver != "" &&
		(t.State == trip.StateAssigned || t.State == trip.StatePickedUp || t.State == trip.StateCompleted || t.State == trip.StateCancelled) {
		s.mu.Lock()
		s.assigned[rec.ID] = true
		s.mu.Unlock()
	}
	return out, err
}

func (s *countingStore) SavePositions(ctx context.Context, shard uint64, ps []store.Position) error {
	s.mu.Lock()
	s.positions += len(ps)
	s.mu.Unlock()
	return s.Store.SavePositions(ctx, shard, ps)
}

// finalStates counts the created trips by their stored state.
func (s *countingStore) finalStates(t *testing.T) map[trip.State]int64 {
	t.Helper()
	out := map[trip.State]int64{}
	for id := range s.created {
		rec, err := s.Store.Trip(context.Background(), id)
		if err != nil {
			t.Fatalf("trip %s: %v", id, err)
		}
		tr, err := trip.Unmarshal(rec.Data)
		if err != nil {
			t.Fatalf("trip %s: %v", id, err)
		}
		out[tr.State]++
	}
	return out
}

// TestSimReportAgreesWithTheServer runs a short, deterministic simulation
// against an in-process cluster and checks the JSON report against what the
// server recorded: trips created, assigned and how they ended, and
// location updates applied.
func TestSimReportAgreesWithTheServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		mode dispatch.Mode
		// fences: the cluster has an event log, so fences and the
		// zones; without one the run goes on without zones.
		fences bool
	}{
		{"connect streams, greedy, zones", []string{"--transport", "stream", "--duration", "7s"}, dispatch.Greedy, true},
		{"update batches, batch matching, no fences", []string{"--transport", "batch", "--batch-size", "100", "--duration", "5s"}, dispatch.Batch, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newCountingStore()
			dcfg := dispatch.DefaultConfig()
			dcfg.Mode = tc.mode
			dcfg.BatchWindow = 500 * time.Millisecond
			dcfg.OfferTimeout = 3 * time.Second
			var evlog events.Log
			if tc.fences {
				var err error
				if evlog, err = events.NewMemory(events.MemoryConfig{}); err != nil {
					t.Fatal(err)
				}
			}
			c, err := cluster.StartDev(cluster.DevConfig{Store: st, Events: evlog, Dispatch: dcfg, Matchers: 2})
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			defer func() {
				if !stopped {
					c.Stop()
				}
			}()
			dir := t.TempDir()
			jsonPath := filepath.Join(dir, "sim.json")
			args := append([]string{
				"--target", c.RouterAddr, "--city", "longyearbyen", "--drivers", "200", "--speedup", "50", "--demand", "20", "--seed", "7",
				"--run-id", "t", "--update-interval", "1s", "--accept", "0.8", "--patience-min", "30s", "--patience-max", "120s",
				"--progress", "off", "--json", jsonPath, "--report", filepath.Join(dir, "report"),
			}, tc.args...)
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := runSim(ctx, args, &out, &out); err != nil {
				t.Fatalf("geomatch sim: %v\n%s", err, out.String())
			}
			// The zones' counts, as the service has them once the run is over.
			var endCounts map[string]*geomatchv1.FenceCount
			if tc.fences {
				endCounts = simZoneCounts(t, c.RouterAddr, "sim-zones")
			}
			// Stopping the cluster flushes the positions written behind.
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
			stopped = true

			f, err := os.Open(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := report.ReadJSON(f)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d requests, %d assigned, %d completed (+%d at the end), %d updates accepted",
				res.Trips.Requests, res.Trips.Assigned, res.Trips.Completed, res.Trips.CompletedAtEnd, res.Updates.Accepted)
			if res.Trips.Requests < 20 || res.Trips.Assigned < 10 || res.Trips.Completed+res.Trips.CompletedAtEnd < 5 || res.Updates.Accepted < 500 {
				t.Fatalf("too little happened to check anything:\n%s", out.String())
			}

			st.mu.Lock()
			defer st.mu.Unlock()
			states := st.finalStates(t)
			tr := res.Trips
			for _, chk := range []struct {
				what         string
				report, want int64
			}{
				{"requests = trips created", tr.Requests, int64(len(st.created))},
				{"assigned = trips that had a driver assigned", tr.Assigned, int64(len(st.assigned))},
				{"completed", tr.Completed + tr.CompletedAtEnd, states[trip.StateCompleted]},
				{"cancelled", tr.RiderGaveUp + tr.CancelledAfterMatch + tr.CancelledAtEnd, states[trip.StateCancelled]},
				{"no driver", tr.NoDriver, states[trip.StateNoDriver]},
				{"open", tr.Open, int64(len(st.created)) - states[trip.StateCompleted] - states[trip.StateCancelled] - states[trip.StateNoDriver]},
				{"updates accepted = positions applied", res.Updates.Accepted, int64(st.positions)},
				{"update loss", res.Updates.Loss, 0},
			} {
				if chk.report != chk.want {
					t.Errorf("%s: report says %d, server %d", chk.what, chk.report, chk.want)
				}
			}
			if tr.Open != 0 {
				t.Errorf("%d trips still open after the wind-down", tr.Open)
			}
			if got := res.Latency["RequestRide"].Count; got < tr.Requests {
				t.Errorf("RequestRide latency has %d calls for %d requests", got, tr.Requests)
			}
			html, err := os.ReadFile(filepath.Join(dir, "report", "index.html"))
			if err != nil {
				t.Fatal(err)
			}
			// The charts are inline SVG; the city map is the live shard
			// map's renderer with its snapshot embedded (it draws in the
			// browser, so the file holds its data, not polygons).
			for _, want := range []string{"<svg", `"shards":`, "Location updates", "Time to match"} {
				if !strings.Contains(string(html), want) {
					t.Errorf("the HTML report has no %q", want)
				}
			}
			// Nothing is fetched from elsewhere: the only URLs are XML
			// namespace names.
			for _, bad := range []string{"http://", "https://"} {
				n := strings.Count(string(html), bad) - strings.Count(string(html), `xmlns="http://www.w3.org`) -
					strings.Count(string(html), `xmlns:xlink="http://www.w3.org`) - strings.Count(string(html), `"http://www.w3.org/2000/svg"`)
				if n > 0 {
					t.Errorf("the HTML report refers to %d external resources (%s)", n, bad)
				}
			}
			if !strings.Contains(out.String(), "location updates") || !strings.Contains(out.String(), "API latency") {
				t.Errorf("no KPI table in the output:\n%s", out.String())
			}
			if tc.fences {
				checkSimZones(t, res, endCounts, out.String(), string(html))
			} else if res.Zones != nil || !strings.Contains(out.String(), "running without zones") {
				t.Errorf("a cluster without fences: zones %+v, and no warning in the output:\n%s", res.Zones, out.String())
			}
		})
	}
}

// simZoneCounts reads the drivers in every fence of set.
func simZoneCounts(t *testing.T, addr, set string) map[string]*geomatchv1.FenceCount {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := geomatchv1.NewFenceServiceClient(conn).GetFenceCounts(ctx, &geomatchv1.GetFenceCountsRequest{Set: set})
	if err != nil {
		t.Fatalf("GetFenceCounts: %v", err)
	}
	out := map[string]*geomatchv1.FenceCount{}
	for _, c := range resp.GetCounts() {
		out[c.GetFenceId()] = c
	}
	return out
}

// checkSimZones checks the zones of a run's report: every zone of the city
// is there, drivers went in and out of them, and the supply the report
// gives at the end is the service's.
func checkSimZones(t *testing.T, res *report.Result, end map[string]*geomatchv1.FenceCount, table, html string) {
	t.Helper()
	z := res.Zones
	if z == nil {
		t.Fatalf("no zones in the report; warnings: %v", res.Run.Warnings)
	}
	if len(z.Zones) < 8 || len(z.Zones) != len(end) {
		t.Fatalf("%d zones in the report, %d fences in the set", len(z.Zones), len(end))
	}
	if len(z.Series) < 3 {
		t.Fatalf("%d zone samples over the window", len(z.Series))
	}
	var enters, exits, available, endInside int64
	for _, zn := range z.Zones {
		c, ok := end[zn.ID]
		if !ok {
			t.Fatalf("zone %s is not a fence of the set", zn.ID)
		}
		if zn.EndInside != c.GetInside() || zn.EndAvailable != c.GetAvailable() {
			t.Errorf("zone %s at the end: report %d inside, %d available; GetFenceCounts %d and %d",
				zn.ID, zn.EndInside, zn.EndAvailable, c.GetInside(), c.GetAvailable())
		}
		// The subscription starts before the first report and the drivers
		// are still on the map: every driver inside entered once more than
		// it left.
		if zn.Enters-zn.Exits != zn.EndInside {
			t.Errorf("zone %s: %d enters - %d exits, but %d inside at the end", zn.ID, zn.Enters, zn.Exits, zn.EndInside)
		}
		if !strings.Contains(table, zn.Name) {
			t.Errorf("zone %s is not in the KPI table", zn.Name)
		}
		enters += zn.Enters
		exits += zn.Exits
		available += zn.AvailablePeak
		endInside += zn.EndInside
	}
	t.Logf("zones: %d enters, %d exits, %.1f events/s, %d inside at the end", enters, exits, z.EventsPerSMean, endInside)
	if enters == 0 || exits == 0 || available == 0 || endInside == 0 || z.EventsPerSPeak == 0 {
		t.Errorf("zones with nothing in them: %d enters, %d exits, %d peak available, %d inside at the end, %.1f events/s at the peak",
			enters, exits, available, endInside, z.EventsPerSPeak)
	}
	if !strings.Contains(table, "zones (fence set sim-zones)") || !strings.Contains(table, "fence events:") {
		t.Errorf("no zones section in the KPI table:\n%s", table)
	}
	for _, want := range []string{"<h2>Zones</h2>", "Available drivers per district", "Fence events (zones)"} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML report has no %q", want)
		}
	}
}

// TestSimRefusesBadFlags checks that a wrong command line fails before
// anything starts.
func TestSimRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--city", "atlantis"}, "--city"},
		{[]string{"--drivers", "0"}, "drivers"},
		{[]string{"--speedup", "1000"}, "speedup"},
		{[]string{"--transport", "pigeon"}, "transport"},
		{[]string{"--compare", "greedy"}, "at least two"},
		{[]string{"--compare", "greedy,fastest"}, "neither greedy nor batch"},
		{[]string{"--compare", "greedy,batch", "--target", "127.0.0.1:1"}, "--target"},
		{[]string{"--target", "10.1.2.3:50051", "--duration", "1s"}, "loopback"},
		{[]string{"--roads", "/nonexistent.geojson"}, "--roads"},
		{[]string{"--progress", "fancy"}, "--progress"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := runSim(ctx, tc.args, &out, &out)
			if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}
