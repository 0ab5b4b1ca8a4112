package loadgen

import "context"

// Update is one simulated location report.
type Update struct {
	ID          string
	Lat, Lng    float64
	TimestampMs int64
}

// Target is a system under load: a geomatch cluster through its public API
// or a RESP geo server. Its methods are safe for concurrent use.
type Target interface {
	// Name describes the target for the report.
	Name() string
	// Update applies a batch of location reports in one round trip and
	// returns how many of them were rejected.
	Update(ctx context.Context, batch []Update) (rejected int, err error)
	// Nearby asks for the limit nearest drivers within radiusM meters.
	Nearby(ctx context.Context, lat, lng, radiusM float64, limit int) error
	// OpenStream starts one driver app's session, over which it reports
	// its own positions one at a time.
	OpenStream(ctx context.Context, driverID string) (Stream, error)
	// Close releases the target's connections.
	Close() error
}

// Stream is one driver app's session. It is used by one goroutine.
type Stream interface {
	// Send reports one position of the stream's driver.
	Send(u Update) error
	// Close ends the session and returns how many updates the target
	// rejected on it (as far as it told the app), and of those how many as
	// stale: older than an update already applied for the driver, which
	// happens when updates in flight together are applied out of order
	// (the newest position wins, as it should).
	Close() (rejected, stale int64, err error)
}
