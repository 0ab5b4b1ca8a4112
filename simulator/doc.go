// Package simulator is the city traffic simulator behind `geomatch sim`:
// it drives a geomatch cluster through its public API the way a city's
// driver and rider apps would, and measures what dispatch and SRE people
// look at.
//
// A run has a scenario and a target. The scenario is a city (package
// city: streets at real coordinates), a fleet of drivers and the riders'
// demand (package demand: Poisson arrivals over the time of day, hot
// spots), all drawn from seeded random sources per entity, so the same
// seed gives the same city, starting positions, arrivals and choices. The
// target is any router address on this machine.
//
// Drivers are owned by a fixed set of workers (Config.Workers): each
// worker keeps its drivers' state, a timer heap of their reports, offer
// answers and arrivals, and sends on their DriverService.Connect streams
// (or, with the batch transport, in UpdateLocations batches). A driver
// reports every UpdateInterval of wall time, moves along the streets at
// its speed times Speedup, goes on and off shift, answers offers after a
// think time (accepting with AcceptProbability), drives to the pickup,
// reports TRIP_STATE_PICKED_UP, drives to the drop-off and reports
// TRIP_STATE_COMPLETED. One receive goroutine per stream hands the
// service's events to the driver's worker. Riders arrive on the demand's
// schedule; each waiting rider is a goroutine (bounded by
// MaxWaitingRiders) that asks for nearby drivers, requests the ride
// (RequestRide, then long polls with the same request id) and cancels
// when its patience runs out.
//
// Time: the measured window is Duration of wall time. Simulated time runs
// Speedup times faster for everything the simulator decides (movement,
// trips, arrivals, think and patience times); what the service times
// (offer timeouts, batch windows, driver TTL) and the report interval stay
// in wall time, since the service runs on the wall clock.
//
// When the window ends the run winds down: arrivals stop, riders still
// waiting or not yet picked up are cancelled, drivers with a rider aboard
// finish the trip at once, streams close and wait for the service's last
// rejections, and every trip's final state is read back, so the counts
// of the Result agree with the service's own records.
//
// Zones: the city has named zones (city.Zones: six districts tiling the
// city, the central-west one with the park as a hole, the airport and the
// park as polygons, the stadium, the central station and a mall as
// circles), laid out in fractions of the city's oriented extent
// (city.CityBox), so every city gets them. Unless Config.Zones is off, the
// run puts them with FenceService.PutFence in set Config.ZoneSet
// ("sim-zones"; fence ids "sim-zones/airport", ...) before the drivers
// connect, subscribes to the set's fence events (EventService.Subscribe;
// only counters per zone are kept, never the events), reads
// GetFenceCounts every sample interval of the window and once more after
// the wind-down, and reports the available supply and the enters and exits
// per zone and the fence events per second (report.Zones). A target
// without fences (FAILED_PRECONDITION, UNIMPLEMENTED) runs without zones,
// with a warning. The fences stay after the run; the next run replaces
// them.
//
// Run is the whole thing; Config documents every knob.
package simulator
