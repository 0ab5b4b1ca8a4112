package report

import (
	"math"
)

// Window is the measured window: the run after its warm-up. The headline
// KPIs are computed over it, so the fleet's start (every driver free, no
// rider waiting) does not colour them.
type Window struct {
	// FromSimS and ToSimS bound the window in simulated seconds since the
	// run started; FromSimS is the warm-up left out.
	FromSimS float64 `json:"from_sim_s"`
	ToSimS   float64 `json:"to_sim_s"`
	// Requests were made in the window; Answered had their answer (a
	// driver, or none) before the run ended; Assigned got a driver;
	// Unmatched ended without one (no driver, or the rider gave up first).
	Requests  int64 `json:"requests"`
	Answered  int64 `json:"answered"`
	Assigned  int64 `json:"assigned"`
	Unmatched int64 `json:"unmatched"`
	// MatchRate is Assigned / Answered.
	MatchRate float64 `json:"match_rate"`
	// Offers the drivers received and Accepted in the window;
	// AcceptanceRate is Accepted / Offers.
	Offers         int64   `json:"offers"`
	Accepted       int64   `json:"accepted"`
	AcceptanceRate float64 `json:"acceptance_rate"`
	// DropOffs are the run's trips dropped off in the window;
	// CarriedDropOffs those of the trips the warm start put on the road
	// (synthetic: the service never saw them).
	DropOffs        int64 `json:"drop_offs"`
	CarriedDropOffs int64 `json:"carried_drop_offs"`
	// Driver-seconds (simulated) in the window: online, available (online
	// with no offer and no trip), busy (accepted to drop-off) and thinking
	// about an offer.
	OnlineDriverS    float64 `json:"online_driver_s"`
	AvailableDriverS float64 `json:"available_driver_s"`
	BusyDriverS      float64 `json:"busy_driver_s"`
	ThinkingDriverS  float64 `json:"thinking_driver_s"`
	// Utilisation is BusyDriverS / OnlineDriverS; IdleShare is
	// AvailableDriverS / OnlineDriverS.
	Utilisation float64 `json:"utilisation"`
	IdleShare   float64 `json:"idle_share"`
	// TripsPerDriverHour is (DropOffs + CarriedDropOffs) per online
	// driver-hour.
	TripsPerDriverHour float64 `json:"trips_per_driver_hour"`
	// PickupM and RiderM are the distances driven in the window to
	// pickups and with riders (carried-over trips included; each leg's
	// route length shared out evenly over its time); DeadheadShare is
	// PickupM / (PickupM + RiderM).
	PickupM       float64 `json:"pickup_m"`
	RiderM        float64 `json:"rider_m"`
	DeadheadShare float64 `json:"deadhead_share"`
	// WaitToPickupS is request to the driver's arrival at the pickup
	// (simulated seconds), of the requests made in the window and picked
	// up before it ended.
	WaitToPickupS Dist `json:"wait_to_pickup_s"`
	// TimeToMatchMs is request to assignment as the rider saw it (wall
	// ms; it includes the drivers' think time); ServiceMs is the same less
	// the think time of the trip's offers: the service's share;
	// FirstOfferMs is request to the first offer reaching a driver.
	TimeToMatchMs Dist `json:"time_to_match_ms"`
	ServiceMs     Dist `json:"service_ms"`
	FirstOfferMs  Dist `json:"first_offer_ms"`
	// ThinkS is offer to answer, simulated seconds (drawn from the
	// configured think time).
	ThinkS Dist `json:"think_s"`
	// PickupETAS is the route time to the pickup at assignment, simulated
	// seconds.
	PickupETAS Dist `json:"pickup_eta_s"`
}

// TripFact is what a run knows of one trip, for the window's KPIs. NaN
// marks what never happened (no assignment, no pickup).
type TripFact struct {
	// RequestedSimS is when the ride was requested, simulated seconds.
	RequestedSimS float64
	// Zone and Place index the run's zones: the district and the place
	// (airport, stadium, ...) holding the pickup; -1 for none.
	Zone, Place int
	// Assigned got a driver; Unmatched ended without one; WaitingAtEnd
	// was still waiting when the window closed.
	Assigned, Unmatched, WaitingAtEnd bool
	// MatchMs, ServiceMs, FirstOfferMs: see Window.
	MatchMs, ServiceMs, FirstOfferMs float64
	// ETAS is the pickup route's time at assignment; WaitS the request to
	// pickup time (simulated seconds).
	ETAS, WaitS float64
	// Pickup and Ride are the trip's legs: to the pickup and with the
	// rider.
	Pickup, Ride Leg
}

// Leg is a drive of a trip: from and to simulated seconds (to is the
// planned arrival while the leg is under way) and the route's length.
// A leg never driven has Meters 0.
type Leg struct {
	FromSimS, ToSimS, Meters float64
}

// metersIn is the part of the leg's length driven between from and to,
// the length shared out evenly over the leg's time.
func (l Leg) metersIn(from, to float64) float64 {
	if !(l.Meters > 0) || !(l.ToSimS >= l.FromSimS) {
		return 0
	}
	if l.ToSimS == l.FromSimS {
		if l.FromSimS >= from && l.FromSimS <= to {
			return l.Meters
		}
		return 0
	}
	overlap := min(l.ToSimS, to) - max(l.FromSimS, from)
	if overlap <= 0 {
		return 0
	}
	return l.Meters * overlap / (l.ToSimS - l.FromSimS)
}

// DriverTime integrates the series' driver gauges over the simulated
// seconds after fromSimS: each sample's gauges hold for the interval since
// the previous sample (the first one's since the start).
func DriverTime(series []Sample, fromSimS float64) (online, available, busy, thinking float64) {
	prev := 0.0
	for _, s := range series {
		lo := max(prev, fromSimS)
		if dt := s.SimS - lo; dt > 0 {
			online += float64(s.Online) * dt
			busy += float64(s.Busy) * dt
			thinking += float64(s.Offered) * dt
			available += float64(max(s.Online-s.Busy-s.Offered, 0)) * dt
		}
		prev = s.SimS
	}
	return online, available, busy, thinking
}

// Measure computes the window's trip and driver-time KPIs from the trips'
// facts and the series; w arrives with its bounds, the event counts
// (offers, acceptances, drop-offs) and the think times filled in.
func Measure(w Window, facts []TripFact, series []Sample) Window {
	var match, service, first, wait, eta []float64
	for _, f := range facts {
		w.PickupM += f.Pickup.metersIn(w.FromSimS, w.ToSimS)
		w.RiderM += f.Ride.metersIn(w.FromSimS, w.ToSimS)
		if !w.holds(f.RequestedSimS) {
			continue
		}
		w.Requests++
		if !f.WaitingAtEnd {
			w.Answered++
		}
		if f.Assigned {
			w.Assigned++
		}
		if f.Unmatched {
			w.Unmatched++
		}
		match = appendKnown(match, f.MatchMs)
		service = appendKnown(service, f.ServiceMs)
		first = appendKnown(first, f.FirstOfferMs)
		wait = appendKnown(wait, f.WaitS)
		eta = appendKnown(eta, f.ETAS)
	}
	w.TimeToMatchMs, w.ServiceMs, w.FirstOfferMs = NewDist(match), NewDist(service), NewDist(first)
	w.WaitToPickupS, w.PickupETAS = NewDist(wait), NewDist(eta)
	w.MatchRate = ratio(float64(w.Assigned), float64(w.Answered))
	w.AcceptanceRate = ratio(float64(w.Accepted), float64(w.Offers))
	w.DeadheadShare = ratio(w.PickupM, w.PickupM+w.RiderM)
	w.OnlineDriverS, w.AvailableDriverS, w.BusyDriverS, w.ThinkingDriverS = DriverTime(series, w.FromSimS)
	w.Utilisation = ratio(w.BusyDriverS, w.OnlineDriverS)
	w.IdleShare = ratio(w.AvailableDriverS, w.OnlineDriverS)
	w.TripsPerDriverHour = ratio(float64(w.DropOffs+w.CarriedDropOffs), w.OnlineDriverS/3600)
	return w
}

// holds reports whether simulated second t is in the window (NaN is not).
func (w Window) holds(t float64) bool { return t >= w.FromSimS && t <= w.ToSimS }

func appendKnown(s []float64, v float64) []float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return s
	}
	return append(s, v)
}

// ZoneKPI is one zone's demand, supply and service in the window.
type ZoneKPI struct {
	// ID, Name and Kind name the zone (district, airport, ...).
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Requests with their pickup in the zone, made in the window, and per
	// simulated minute; DemandShare is the zone's share of the city's.
	Requests       int64   `json:"requests"`
	RequestsPerMin float64 `json:"requests_per_min"`
	DemandShare    float64 `json:"demand_share"`
	// AvailableMean is the available drivers inside on average over the
	// window (the service's fence counts; -1 without them); SupplyShare
	// is the zone's share of the districts' total.
	AvailableMean float64 `json:"available_mean"`
	SupplyShare   float64 `json:"supply_share"`
	// Assigned and Unmatched requests; UnmatchedShare is Unmatched over
	// the answered ones.
	Assigned       int64   `json:"assigned"`
	Unmatched      int64   `json:"unmatched"`
	UnmatchedShare float64 `json:"unmatched_share"`
	// ETA and wait to pickup (simulated seconds) of the zone's trips.
	ETAMeanS  float64 `json:"eta_mean_s"`
	ETAP90S   float64 `json:"eta_p90_s"`
	WaitMeanS float64 `json:"wait_mean_s"`
}

// ZoneInfo names a zone for ZoneKPIs.
type ZoneInfo struct{ ID, Name, Kind string }

// ZoneKPIs computes each zone's KPIs over w from the trips' facts and,
// when the run counted the drivers in the zones (supply non-nil, in the
// same zone order), the supply. speedup converts the supply samples' wall
// times to simulated ones. Shares are of the districts' totals, which
// tile the city.
func ZoneKPIs(zones []ZoneInfo, w Window, facts []TripFact, supply *Zones, speedup float64) []ZoneKPI {
	out := make([]ZoneKPI, len(zones))
	eta := make([][]float64, len(zones))
	wait := make([][]float64, len(zones))
	answered := make([]int64, len(zones))
	for i, z := range zones {
		out[i] = ZoneKPI{ID: z.ID, Name: z.Name, Kind: z.Kind, AvailableMean: -1}
	}
	var demand int64
	for _, f := range facts {
		if !w.holds(f.RequestedSimS) {
			continue
		}
		for _, i := range [2]int{f.Zone, f.Place} {
			if i < 0 || i >= len(out) {
				continue
			}
			z := &out[i]
			z.Requests++
			if z.Kind == "district" {
				demand++
			}
			if !f.WaitingAtEnd {
				answered[i]++
			}
			if f.Assigned {
				z.Assigned++
			}
			if f.Unmatched {
				z.Unmatched++
			}
			eta[i] = appendKnown(eta[i], f.ETAS)
			wait[i] = appendKnown(wait[i], f.WaitS)
		}
	}
	minutes := (w.ToSimS - w.FromSimS) / 60
	for i := range out {
		z := &out[i]
		z.RequestsPerMin = ratio(float64(z.Requests), minutes)
		z.DemandShare = ratio(float64(z.Requests), float64(demand))
		z.UnmatchedShare = ratio(float64(z.Unmatched), float64(answered[i]))
		e, wt := NewDist(eta[i]), NewDist(wait[i])
		z.ETAMeanS, z.ETAP90S, z.WaitMeanS = e.Mean, e.P90, wt.Mean
	}
	if supply == nil || len(supply.Zones) != len(zones) {
		return out
	}
	sum := make([]float64, len(zones))
	n := 0
	for _, s := range supply.Series {
		if len(s.Available) != len(zones) || s.T*speedup < w.FromSimS {
			continue
		}
		n++
		for i, a := range s.Available {
			sum[i] += float64(a)
		}
	}
	if n == 0 {
		return out
	}
	total := 0.0
	for i := range out {
		out[i].AvailableMean = sum[i] / float64(n)
		if out[i].Kind == "district" {
			total += out[i].AvailableMean
		}
	}
	for i := range out {
		out[i].SupplyShare = ratio(out[i].AvailableMean, total)
	}
	return out
}

// Definition is one term of the report and what it means.
type Definition struct{ Term, Meaning string }

// Definitions are the report's terms, in reading order: the KPI table's
// definitions column and the "Reading this report" section.
func Definitions(r *Result) []Definition {
	warm := "The fleet starts cold: every driver free, no trip on the road."
	if r.Scenario.WarmStart {
		warm = "The fleet starts near its steady state: a share of the online drivers is already on a trip (carried over, synthetic: the service never saw those trips; their drivers report themselves on a trip and take no offers until their drop-off). The share is Little's law: the demand at the start hour times a trip's expected busy time (the trips' routes sampled from the demand, plus a pickup drive from the fleet's density)."
	}
	return []Definition{
		{"simulated time", "Every chart's time axis is the simulated time of day (HH:MM): the run starts at --start-hour and simulated time runs --speedup times faster than the wall clock. The service's own timers (offer timeout, batch window) stay real, so service times are in wall milliseconds."},
		{"warm start", warm},
		{"warm-up", "The first simulated minutes (--warmup; shaded on the charts) are left out of the KPIs, so the start's transient (riders arriving at an idle fleet) does not count. The KPIs cover the measured window after it."},
		{"match rate", "Requests made in the window that got a driver, over those answered before the run ended (requests still waiting at the end are left out)."},
		{"time to match", "Request to assignment as the rider saw it (wall ms). It includes the drivers' think time, which the simulator draws (--think-min..--think-max, simulated, so divided by --speedup in wall time)."},
		{"dispatch service time", "Time to match less the think time of the trip's offers: what the service itself took (finding a driver, sending the offer, confirming the answer, re-offering after a decline)."},
		{"first offer", "Request to the first offer reaching a driver (wall ms)."},
		{"driver think time", "Offer to answer, simulated seconds: the simulated driver's decision time, not the service's."},
		{"wait to pickup", "Request to the driver's arrival at the pickup, simulated seconds: what the rider waits on the kerb. The time to match inside it runs on the wall clock and counts --speedup times over, so a mode that waits on a real-time window (batch) pays for it --speedup times more than it would in a real city."},
		{"pickup ETA", "The route's time to the pickup at the streets' speeds when the driver was assigned, simulated seconds."},
		{"utilisation", "Busy driver time (accepted to drop-off, carried-over trips included) over online driver time."},
		{"driver idle share", "Available driver time (online, no offer, no trip) over online driver time."},
		{"deadhead share", "Distance driven to pickups over distance driven on trips (to the pickup and with the rider) in the window, carried-over trips included; each leg's route length is shared out over its time. Roaming between trips is not counted."},
		{"acceptance rate", "Offers accepted over offers received by the drivers in the window."},
		{"trips per driver-hour", "Drop-offs in the window (carried-over ones included, since their drivers' hours count) per online driver-hour (simulated)."},
		{"wind-down", "When the window closes the simulator ends what is open: it cancels trips still waiting or on the way to the pickup and finishes those with a rider aboard. Those outcomes are synthetic and counted apart from the real ones."},
		{"zones", "Per zone of the pickup: requests in the window and per simulated minute, the available drivers inside (the service's fence counts, averaged over the window), unmatched requests, pickup ETA and wait to pickup. Shares are of the six districts, which tile the city (but for the park, a hole in the central-west district, counted as a place of its own)."},
	}
}
