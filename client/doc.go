// Package client is the Go client of geomatch's public gRPC API: what
// driver apps, rider apps, dispatch back ends, the simulator, the load
// generator and the geomatch CLI use to talk to a router.
//
// One Conn holds one gRPC connection, shared by every call made through
// it:
//
//	conn, err := client.Dial("router.example.com:7070",
//		client.WithCAFile("ca.pem"), client.WithTokenFile("/run/secrets/geomatch-token"),
//		client.WithUserAgent("fleet-app/2.3"))
//	if err != nil { ... }
//	defer conn.Close()
//
// Dial insists on transport security: TLS (WithCAFile, WithSystemRoots or
// WithTLS), or Insecure for a loopback development cluster such as
// `geomatch dev`. A bearer token (WithToken, or WithTokenFile, read again
// when the file changes) goes on every call.
//
// # Drivers
//
// ConnectDriver opens a driver session: a DriverService.Connect stream
// that says hello, asks the router to acknowledge applied location
// updates, and is opened again (with backoff and jitter, a bounded number
// of times in a row) when it breaks. Updates not yet acknowledged are kept
// (a bounded buffer) and the newest is sent again on the new stream, so
// the driver's last position and status survive a reconnect. Offers come
// to the OnOffer callback, which returns accept or decline; trips to
// OnTrip; the app reports pickup and drop-off with Progress:
//
//	sess, err := conn.ConnectDriver(ctx, client.DriverConfig{
//		DriverID: "cab-7",
//		OnOffer:  func(o *geomatchv1.RideOffer) bool { return o.GetPickupDistanceM() < 3000 },
//		OnTrip:   func(t *geomatchv1.Trip) { trips <- t },
//	})
//	...
//	err = sess.SendLocation(&geomatchv1.LocationUpdate{Position: pos, TimestampMs: time.Now().UnixMilli()})
//	...
//	err = sess.Close() // drains: the router answers the last updates first
//
// The session owns one goroutine (receive, callbacks, reconnects); Close
// waits for it.
//
// # Riders and dispatch
//
// Nearby, RequestRide, GetTrip and CancelTrip wrap RiderService and try
// again on UNAVAILABLE (a matcher unreachable, a shard moving between
// nodes — the router retries NotOwner refusals itself and answers
// UNAVAILABLE when the ring kept moving) under a RetryPolicy, never past
// the caller's deadline. RequestRide is idempotent by request_id, so its
// retries are safe. OpenNearbyStream asks many questions over one stream,
// matching the answers to the questions by tag. UpdateLocations splits
// any number of updates into calls of at most 10,000.
//
// # Events and administration
//
// Subscribe follows the event stream (fence, trip and driver events),
// resuming after the last event's cursor when the stream breaks. Drivers,
// Riders, Fences, Events and Admin return the generated clients on the
// same connection, for everything the package does not wrap (the admin
// CLI uses Admin).
//
// Runnable programs are in examples/driver and examples/rider.
package client
