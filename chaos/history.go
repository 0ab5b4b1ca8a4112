package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Kind is what a client operation was.
type Kind string

// The kinds of operations a history holds.
const (
	// KindUpdate is one location update sent on a driver's Connect stream;
	// it is ok once an UpdatesAck covers its timestamp.
	KindUpdate Kind = "update"
	// KindStream is one Connect stream's life; an error outcome means the
	// server ended it.
	KindStream Kind = "stream"
	// KindNearby is one NearbyDrivers query and its answer.
	KindNearby Kind = "nearby"
	// KindRide is one RequestRide call; ok means a trip was acknowledged.
	KindRide Kind = "ride"
	// KindTrip is one observation of a trip: a GetTrip answer or a trip
	// event on the driver's stream.
	KindTrip Kind = "trip"
	// KindAnswer is a driver's answer to an offer.
	KindAnswer Kind = "answer"
	// KindProgress is a driver's pickup or drop-off report.
	KindProgress Kind = "progress"
	// KindReadback is the final read of a driver's held position, after
	// the load stopped: TS is the held timestamp, 0 when not found.
	KindReadback Kind = "readback"
	// KindFault is a fault the harness injected (Detail says which).
	KindFault Kind = "fault"
)

// Outcome is how an operation ended.
type Outcome string

// Outcomes.
const (
	// OK: acknowledged (an update), answered in full (a query), accepted.
	OK Outcome = "ok"
	// Rejected: the server refused it explicitly (an update's Rejection).
	Rejected Outcome = "rejected"
	// Failed: the call returned an error (Code says which).
	Failed Outcome = "failed"
	// Partial: a nearby answer flagged partial (some shards left out).
	Partial Outcome = "partial"
	// Unknown: no outcome was learnt (an update whose stream ended before
	// it was acknowledged); it may or may not have been applied.
	Unknown Outcome = "unknown"
)

// Seen is one driver in a nearby answer.
type Seen struct {
	Driver string  `json:"d"`
	TS     int64   `json:"ts"`
	Lat    float64 `json:"lat"`
	Lng    float64 `json:"lng"`
}

// Op is one client operation. Times are offsets from the start of the
// run; an operation took effect (if at all) somewhere in [Start, End].
type Op struct {
	Kind    Kind          `json:"kind"`
	Start   time.Duration `json:"start"`
	End     time.Duration `json:"end"`
	Outcome Outcome       `json:"outcome"`
	// Code is the gRPC code or the rejection reason of a failure.
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
	Driver string `json:"driver,omitempty"`
	// TS is an update's timestamp_ms (unique and increasing per driver),
	// or the held timestamp of a readback.
	TS  int64   `json:"ts,omitempty"`
	Lat float64 `json:"lat,omitempty"`
	Lng float64 `json:"lng,omitempty"`
	// Trip and State describe a ride or trip observation; Driver is the
	// trip's driver.
	Trip  string `json:"trip,omitempty"`
	State string `json:"state,omitempty"`
	// RadiusM and Limit are a nearby query's; Lat and Lng its center.
	RadiusM float64  `json:"radius_m,omitempty"`
	Limit   int      `json:"limit,omitempty"`
	Results []Seen   `json:"results,omitempty"`
	Missing []string `json:"missing_shards,omitempty"`
	// Node is the target of a fault.
	Node string `json:"node,omitempty"`
}

// Trip states as the history records them (the proto names without
// their TRIP_STATE_ prefix).
const (
	StateRequested = "REQUESTED"
	StateOffered   = "OFFERED"
	StateAssigned  = "ASSIGNED"
	StatePickedUp  = "PICKED_UP"
	StateCompleted = "COMPLETED"
	StateCancelled = "CANCELLED"
	StateNoDriver  = "NO_DRIVER"
	StateNotFound  = "NOT_FOUND"
)

// History records operations from many goroutines. It keeps at most max
// operations in memory (later ones are counted as dropped, and the check
// says the history is incomplete) and, when given a writer, writes each
// operation as a JSON line as it is recorded.
type History struct {
	start time.Time

	mu      sync.Mutex
	chunks  [][]Op // full chunks of historyChunk ops, then the one being filled
	n       int    // operations kept
	max     int
	dropped int
	w       *bufio.Writer
	enc     *json.Encoder
	werr    error
}

// NewHistory returns a history whose clock starts now, keeping at most
// max operations; w, when not nil, receives every operation as JSON.
func NewHistory(max int, w io.Writer) *History {
	h := &History{start: time.Now(), max: max}
	if w != nil {
		h.w = bufio.NewWriterSize(w, 1<<16)
		h.enc = json.NewEncoder(h.w)
	}
	return h
}

// Now returns the time since the history began.
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Began returns the wall-clock time the history's offsets count from.
func (h *History) Began() time.Time { return h.start }

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.enc != nil && h.werr == nil {
		h.werr = h.enc.Encode(op)
	}
	if h.n >= h.max {
		h.dropped++
		return
	}
	if k := len(h.chunks); k == 0 || len(h.chunks[k-1]) == historyChunk {
		h.chunks = append(h.chunks, make([]Op, 0, historyChunk))
	}
	last := &h.chunks[len(h.chunks)-1]
	*last = append(*last, op)
	h.n++
}

// historyChunk is how many operations one chunk of the history holds. A
// history of millions of operations grows chunk by chunk: one slice
// doubling its way there would copy gigabytes while the load runs, and
// the collections that those allocations set off slow the cluster that
// shares the machine.
const historyChunk = 1 << 16

// Ops returns a copy of the operations kept and how many were dropped.
func (h *History) Ops() ([]Op, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, 0, h.n)
	for _, c := range h.chunks {
		out = append(out, c...)
	}
	return out, h.dropped
}

// Flush writes what is buffered to the JSON lines writer.
func (h *History) Flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w == nil {
		return nil
	}
	if h.werr != nil {
		return fmt.Errorf("write history: %w", h.werr)
	}
	if err := h.w.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// ReadHistory reads operations written as JSON lines (by a History with a
// writer), for checking a recorded run again.
func ReadHistory(r io.Reader) ([]Op, error) {
	var ops []Op
	dec := json.NewDecoder(r)
	for {
		var op Op
		err := dec.Decode(&op)
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read history: operation %d: %w", len(ops)+1, err)
		}
		ops = append(ops, op)
	}
}
