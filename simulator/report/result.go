// Package report turns a simulation run into what dispatch and SRE people
// read: the KPI table printed at the end, the JSON document (Result, a
// stable schema for scripts and dashboards) and a self-contained HTML page
// with charts over time and a map of the city's shards and pickups.
//
// It is the output side of the simulator only: the simulator package
// fills a Result; this package formats it (WriteTable, WriteJSON,
// WriteHTML) and compares runs (Compare, WriteComparison). Nothing here
// talks to the network.
package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// SchemaVersion is the version of the JSON document; fields are added
// without a new version, never renamed.
const SchemaVersion = 1

// Result is one simulation run.
type Result struct {
	Version  int      `json:"version"`
	Scenario Scenario `json:"scenario"`
	Run      Run      `json:"run"`
	Trips    Trips    `json:"trips"`
	// TimeToMatchMs is the wall time from the ride request to the
	// assignment of a driver (assigned trips only).
	TimeToMatchMs Dist `json:"time_to_match_ms"`
	// PickupDistanceM is the great-circle distance from the assigned
	// driver to the pickup, as the service reported it.
	PickupDistanceM Dist `json:"pickup_distance_m"`
	// PickupRouteM is the length of the driver's route to the pickup.
	PickupRouteM Dist `json:"pickup_route_m"`
	// PickupETAS is the route's time at the streets' speeds when assigned,
	// PickupTimeS the time the driver took, both in simulated seconds.
	PickupETAS  Dist `json:"pickup_eta_s"`
	PickupTimeS Dist `json:"pickup_time_s"`
	// TripTimeS is pickup to drop-off, simulated seconds.
	TripTimeS Dist    `json:"trip_time_s"`
	Drivers   Drivers `json:"drivers"`
	Updates   Updates `json:"updates"`
	// Latency is per API method (RequestRide, NearbyDrivers, CancelTrip,
	// GetTrip, UpdateLocations; Connect.OfferAnswer and
	// Connect.TripProgress are an answer's round trip on the driver's
	// stream; Connect.Send is the time a location send blocks the app).
	Latency map[string]Latency `json:"latency_ms"`
	// Series are samples over time (one per sample interval).
	Series []Sample `json:"series"`
	// Shards are the shards holding drivers at the end of the run, with
	// their owners, as AdminService.ListShards reported them.
	Shards []Shard `json:"shards"`
	// Pickups is a sample of ride requests with their outcome (for the
	// map).
	Pickups []Pickup `json:"pickups"`
	// Zones is the supply and the fence events per named zone of the city;
	// absent when the run had no zones.
	Zones *Zones `json:"zones,omitempty"`
	// Window holds the headline KPIs: the measured window after the
	// warm-up (see Definitions).
	Window *Window `json:"window,omitempty"`
	// ZoneKPIs are the demand, supply and service per zone of the pickups
	// in the window.
	ZoneKPIs []ZoneKPI `json:"zone_kpis,omitempty"`
	// NodeLoad is the load per matcher over time with the ring's splits
	// and merges (see NodeLoad); absent unless sampled.
	NodeLoad *NodeLoad `json:"node_load,omitempty"`
}

// Scenario is what was simulated.
type Scenario struct {
	City              string  `json:"city"`
	Drivers           int     `json:"drivers"`
	DurationS         float64 `json:"duration_s"`
	UpdateIntervalS   float64 `json:"update_interval_s"`
	Speedup           float64 `json:"speedup"`
	Seed              uint64  `json:"seed"`
	RunID             string  `json:"run_id"`
	Transport         string  `json:"transport"`
	MatchMode         string  `json:"match_mode"`
	Target            string  `json:"target"`
	DemandPerMinute   float64 `json:"demand_per_minute"`
	StartHour         float64 `json:"start_hour"`
	AcceptProbability float64 `json:"accept_probability"`
	// ThinkMinS and ThinkMaxS bound the drivers' think time (simulated).
	ThinkMinS float64 `json:"think_min_s"`
	ThinkMaxS float64 `json:"think_max_s"`
	// WarmStart: the fleet started near its steady state, some drivers
	// already on (carried-over, synthetic) trips.
	WarmStart bool `json:"warm_start"`
	// WarmupS is the warm-up asked for, simulated seconds (Window.FromSimS
	// is the one applied).
	WarmupS float64 `json:"warmup_s"`
}

// Run is how the run went in time.
type Run struct {
	StartedAt string `json:"started_at"`
	// ConnectS is how long opening the drivers' streams took (before the
	// measured window).
	ConnectS float64 `json:"connect_s"`
	// WallS and SimS are the measured window in wall and simulated
	// seconds.
	WallS float64 `json:"wall_s"`
	SimS  float64 `json:"sim_s"`
	// WindDownS is how long ending the open trips took after the window.
	WindDownS float64 `json:"wind_down_s"`
	// CarriedTrips are the trips the warm start put on the road.
	CarriedTrips int64 `json:"carried_trips"`
	// WarmupNote says why the warm-up applied differs from the one asked
	// for (a window too short for it).
	WarmupNote string `json:"warmup_note,omitempty"`
	// NoComparison says why the report has no comparison of matching
	// modes.
	NoComparison string `json:"no_comparison,omitempty"`
	// Warnings lists what went wrong on the client side.
	Warnings []string `json:"warnings,omitempty"`
}

// Trips counts the ride requests by outcome. Every trip the run created is
// counted once by its final state (after the wind-down).
type Trips struct {
	Requests int64 `json:"requests"`
	// Assigned trips got a driver (whatever happened later).
	Assigned int64 `json:"assigned"`
	// MatchRate is Assigned over the requests that had their answer
	// before the run ended (Requests - WaitingAtEnd), so a window's last
	// seconds, or a matching mode that answers later, do not count as
	// failures.
	MatchRate float64 `json:"match_rate"`
	// WaitingAtEnd were still waiting for a driver when the run ended
	// (cancelled then; part of CancelledAtEnd).
	WaitingAtEnd int64 `json:"waiting_at_end"`
	// Completed were dropped off during the window; CompletedAtEnd were
	// finished at once when the run ended (their riders were in the car).
	Completed      int64 `json:"completed"`
	CompletedAtEnd int64 `json:"completed_at_end"`
	// NoDriver ended without a driver (none near, or all declined).
	NoDriver int64 `json:"no_driver"`
	// RiderGaveUp: cancelled by the rider after their patience ran out,
	// before a driver was assigned.
	RiderGaveUp int64 `json:"rider_gave_up"`
	// CancelledAfterMatch: cancelled once a driver had been assigned,
	// during the window.
	CancelledAfterMatch int64 `json:"cancelled_after_match"`
	// CancelledAtEnd: still waiting or on the way to the pickup when the
	// run ended; cancelled by the simulator.
	CancelledAtEnd int64 `json:"cancelled_at_end"`
	// Open trips were not final even after the wind-down.
	Open int64 `json:"open"`
	// RequestErrors are RequestRide calls that failed; DroppedArrivals are
	// riders the simulator could not start (too many waiting at once).
	RequestErrors   int64 `json:"request_errors"`
	DroppedArrivals int64 `json:"dropped_arrivals"`
}

// Drivers is the fleet's side.
type Drivers struct {
	Fleet     int     `json:"fleet"`
	Connected int     `json:"connected"`
	OnlineAvg float64 `json:"online_avg"`
	// Utilisation is the share of online driver time spent on trips (from
	// acceptance to drop-off); WithRider the share with a rider aboard.
	Utilisation float64 `json:"utilisation"`
	WithRider   float64 `json:"with_rider"`
	Offers      int64   `json:"offers"`
	Accepted    int64   `json:"accepted"`
	Declined    int64   `json:"declined"`
	// AcceptsClosed were acceptances the service refused (the offer had
	// expired or been withdrawn).
	AcceptsClosed int64 `json:"accepts_closed"`
	// StreamErrors are driver streams that broke.
	StreamErrors int64 `json:"stream_errors"`
}

// Updates is the location reporting side.
type Updates struct {
	// Offered is what the drivers were due to report; Sent went out;
	// Accepted were applied by the service; Rejected came back refused
	// (by reason); Failed were lost to broken streams or failed calls;
	// Skipped were never sent because the simulator fell behind.
	Offered  int64            `json:"offered"`
	Sent     int64            `json:"sent"`
	Accepted int64            `json:"accepted"`
	Rejected int64            `json:"rejected"`
	ByReason map[string]int64 `json:"rejected_by_reason,omitempty"`
	Failed   int64            `json:"failed"`
	Skipped  int64            `json:"skipped"`
	// Late updates went out more than a quarter interval after they were
	// due.
	Late int64 `json:"late"`
	// OfferedPerS and AchievedPerS are Offered and Accepted over the
	// window.
	OfferedPerS  float64 `json:"offered_per_s"`
	AchievedPerS float64 `json:"achieved_per_s"`
	// Loss is Offered - Accepted.
	Loss int64 `json:"loss"`
}

// Dist summarises a distribution.
type Dist struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	// Hist is a histogram from the smallest value to the p99 (the last
	// bin also holds the values above it).
	Hist []Bin `json:"hist,omitempty"`
}

// Bin is one histogram bin: Count values in [Lo, Hi).
type Bin struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int64   `json:"count"`
}

// histBins is the number of bins of a Dist's histogram.
const histBins = 24

// Latency summarises one API method's latency, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

// Sample is the state of the run at one moment and the rates since the
// previous sample.
type Sample struct {
	// T is wall seconds since the window started; SimS the simulated
	// seconds since then (the time of day is Scenario.StartHour plus
	// SimS).
	T    float64 `json:"t"`
	SimS float64 `json:"sim_s"`
	// Online drivers, Busy ones (accepted to drop-off), Offered ones
	// (thinking about an offer), riders Waiting for a driver.
	Online  int64 `json:"online"`
	Busy    int64 `json:"busy"`
	Offered int64 `json:"offered"`
	Waiting int64 `json:"waiting"`
	// Rates per second since the previous sample.
	UpdatesOfferedPerS float64 `json:"updates_offered_per_s"`
	UpdatesSentPerS    float64 `json:"updates_sent_per_s"`
	RejectedPerS       float64 `json:"rejected_per_s"`
	RequestsPerS       float64 `json:"requests_per_s"`
	MatchesPerS        float64 `json:"matches_per_s"`
	// P99Ms is each method's p99 latency over the sample's interval.
	P99Ms map[string]float64 `json:"p99_ms,omitempty"`
}

// Shard is one shard and its owner.
type Shard struct {
	Cell    string  `json:"cell"`
	Owner   string  `json:"owner"`
	Drivers int64   `json:"drivers"`
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
}

// Pickup is one ride request's pickup and how it ended: assigned,
// no_driver, gave_up or other.
type Pickup struct {
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	Outcome string  `json:"outcome"`
}

// NewDist summarises values (which it sorts in place). Quantiles are the
// nearest rank.
func NewDist(values []float64) Dist {
	if len(values) == 0 {
		return Dist{}
	}
	slices.Sort(values)
	sum := 0.0
	for _, v := range values {
		sum += v
	}
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(values)))) - 1
		return values[min(max(i, 0), len(values)-1)]
	}
	d := Dist{Count: int64(len(values)), Mean: sum / float64(len(values)), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: values[len(values)-1]}
	lo, hi := values[0], d.P99
	if hi <= lo {
		hi = d.Max
	}
	if hi > lo {
		w := (hi - lo) / histBins
		d.Hist = make([]Bin, histBins)
		for i := range d.Hist {
			d.Hist[i] = Bin{Lo: lo + float64(i)*w, Hi: lo + float64(i+1)*w}
		}
		for _, v := range values {
			i := min(int((v-lo)/w), histBins-1)
			d.Hist[i].Count++
		}
	}
	return d
}

// WriteJSON writes v (a Result or a Comparison) as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// WriteJSONFile writes v to the file path.
func WriteJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := WriteJSON(f, v); err != nil {
		f.Close()
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// ReadJSON reads a Result written by WriteJSON.
func ReadJSON(r io.Reader) (*Result, error) {
	var res Result
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if res.Version != SchemaVersion {
		return nil, fmt.Errorf("read report: schema version %d, want %d", res.Version, SchemaVersion)
	}
	return &res, nil
}

// methodOrder lists the API methods in the order tables show them.
var methodOrder = []string{"RequestRide", "NearbyDrivers", "GetTrip", "CancelTrip", "UpdateLocations", "Connect.OfferAnswer", "Connect.TripProgress", "Connect.Send"}

// Methods returns the methods of r's latency table in display order.
func (r *Result) Methods() []string {
	var out []string
	for _, m := range methodOrder {
		if l, ok := r.Latency[m]; ok && l.Count > 0 {
			out = append(out, m)
		}
	}
	var rest []string
	for m, l := range r.Latency {
		if !slices.Contains(methodOrder, m) && l.Count > 0 {
			rest = append(rest, m)
		}
	}
	slices.SortFunc(rest, cmp.Compare)
	return append(out, rest...)
}
