package index

import (
	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/internal/geo"
)

// Status is a driver's dispatch status (package driver holds the one
// definition).
type Status = driver.Status

// Driver statuses, as package driver defines them.
const (
	// StatusUnspecified on an update keeps the driver's current status
	// (available for a new driver); in a Filter it means any status except
	// offline.
	StatusUnspecified = driver.StatusUnspecified
	// StatusAvailable drivers can be offered a trip.
	StatusAvailable = driver.StatusAvailable
	// StatusReserved drivers hold a pending offer.
	StatusReserved = driver.StatusReserved
	// StatusOnTrip drivers are driving a rider.
	StatusOnTrip = driver.StatusOnTrip
	// StatusOffline drivers still report positions but take no trips;
	// filters exclude them unless asked for explicitly.
	StatusOffline = driver.StatusOffline
)

// Driver is the index's view of one driver.
type Driver struct {
	ID           string
	Pos          geo.LatLng
	TimestampMs  int64 // client timestamp of the last applied update
	Status       Status
	VehicleClass string
	Shard        h3.Cell // shard the driver is indexed under
	// HandedOver is set while the position is one another node (or the
	// store) handed over, not yet confirmed by an update of the driver's.
	HandedOver bool
	// OnStream is set when the driver's last update came on its Connect
	// stream: it can see ride offers.
	OnStream bool
}

// Update is one location update, already validated by the caller; Shard is
// computed by the caller from its shard layout.
type Update struct {
	ID           string
	Pos          geo.LatLng
	TimestampMs  int64
	Status       Status // Unspecified: keep current (available for a new driver)
	VehicleClass string // "": keep current
	Shard        h3.Cell
	// HandedOver marks a position handed over by another node or read from
	// the store during a warm-up, rather than sent by the driver. The
	// driver's next own update then reports Claimed, as if the driver were
	// new here: a handed-over copy may be older than one another node has
	// received meanwhile, and that node's copy must go.
	HandedOver bool
	// OnStream marks an update that came on the driver's Connect stream
	// (or a handed-over copy of a driver whose last update did): only such
	// drivers are offered rides (Filter.OnStreamOnly).
	OnStream bool
}

// Outcome says what Apply did with one update: Applied, Duplicate, Stale,
// Full or Invalid, of the one outcome vocabulary (package driver).
type Outcome = driver.Outcome

// Outcomes of an update.
const (
	// OutcomeApplied: stored (new driver, moved, or changed).
	OutcomeApplied = driver.Applied
	// OutcomeDuplicate: same timestamp as the stored one; ignored, not an
	// error (retries are idempotent).
	OutcomeDuplicate = driver.Duplicate
	// OutcomeStale: older than the stored (or tombstoned) timestamp; ignored.
	OutcomeStale = driver.Stale
	// OutcomeFull: the index holds MaxDrivers live drivers (or
	// MaxVehicleClasses classes and the update brings a new one); refused.
	OutcomeFull = driver.Full
	// OutcomeInvalid: the update breaks an invariant the caller should have
	// checked (empty id or one over 4096 bytes, position outside the globe
	// or not finite, unknown status, zero shard); refused, nothing changed.
	// It guards the grids against NaN coordinates, which would put drivers
	// in no cell.
	OutcomeInvalid = driver.Invalid
)

// Result is what Apply reports for one update.
type Result struct {
	Outcome Outcome
	// Claimed is set when the driver was not live on this node before (new,
	// or back after eviction, removal or expiry), or was live only as a
	// handed-over copy and this is the driver's own update: the caller
	// tells the other nodes to drop older copies (Evict).
	Claimed bool
	// MovedFrom is non-zero when the update moved the driver from another
	// shard of this node.
	MovedFrom h3.Cell
	// Prev is the driver's state before an applied update (Live false
	// when the driver was not live here: new, or back from a tombstone).
	Prev Prev
}

// Prev is a live driver's state before an update.
type Prev struct {
	Live        bool
	Pos         geo.LatLng
	TimestampMs int64
	Status      Status
	HandedOver  bool
}

// Filter selects the drivers a Nearby search may return.
type Filter struct {
	Status       Status // Unspecified: any status except Offline
	VehicleClass string // "": any
	// OnStreamOnly keeps drivers whose last update came on their Connect
	// stream only (a ride coordinator's search).
	OnStreamOnly bool
}

// Neighbor is one Nearby result.
type Neighbor struct {
	Driver    Driver
	DistanceM float64 // geo.DistanceM from the query point
}

// ShardStat is the number of live drivers of one shard.
type ShardStat struct {
	Shard   h3.Cell
	Drivers int
}
