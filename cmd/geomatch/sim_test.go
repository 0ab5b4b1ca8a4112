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

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/dispatch"
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
	}{
		{"connect streams, greedy", []string{"--transport", "stream", "--duration", "7s"}, dispatch.Greedy},
		{"update batches, batch matching", []string{"--transport", "batch", "--batch-size", "100", "--duration", "5s"}, dispatch.Batch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newCountingStore()
			dcfg := dispatch.DefaultConfig()
			dcfg.Mode = tc.mode
			dcfg.BatchWindow = 500 * time.Millisecond
			dcfg.OfferTimeout = 3 * time.Second
			c, err := cluster.StartDev(cluster.DevConfig{Store: st, Dispatch: dcfg, Matchers: 2})
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
			for _, want := range []string{"<svg", "<polygon", "Location updates", "Time to match"} {
				if !strings.Contains(string(html), want) {
					t.Errorf("the HTML report has no %q", want)
				}
			}
			for _, bad := range []string{"http://", "https://"} {
				if n := strings.Count(string(html), bad) - strings.Count(string(html), `xmlns="http://www.w3.org`) - strings.Count(string(html), `xmlns:xlink="http://www.w3.org`); bad == "http://" && n > 0 {
					t.Errorf("the HTML report refers to %d external resources", n)
				}
			}
			if !strings.Contains(out.String(), "location updates") || !strings.Contains(out.String(), "API latency") {
				t.Errorf("no KPI table in the output:\n%s", out.String())
			}
		})
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
