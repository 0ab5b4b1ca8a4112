package matcher

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uber/h3-go/v4"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/fence/fencev1"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/matcher/index"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/store"
)

// Fences. A node indexes every fence definition of the store (it follows
// the store's changes, and a router makes it catch up before a PutFence
// returns, SyncFences) and checks each update it applies against them:
//
//   - a driver the node held before the update: the transitions between its
//     previous and its new position (package fence, exact);
//   - a driver new on this node (it crossed from another node's shard, or
//     its shard failed over here): the node has no previous position of its
//     own, so it reads the set of fences the driver was inside from the
//     store's fence states, which every node writes, before it acknowledges
//     an update, whenever a driver's set changes. Enter, exit and inside
//     follow from that set exactly; a cross needs the previous position and
//     is not reported for that one update.
//
// The events of a batch are appended to the event log, then the changed
// fence states saved, before the batch is acknowledged: an acknowledged
// update's events are durable, and an update retried after a node died
// mid-way logs its events again under the same ids rather than not at all.

// fenceEngine is a node's fence index and its position in the store's
// changes.
type fenceEngine struct {
	defs   store.Fences
	states store.FenceStates
	log    events.Log

	mu  sync.RWMutex // guards ix (the index is not safe for concurrent writes)
	ix  *fence.Index
	res int

	syncMu sync.Mutex    // one sync at a time; guards rev's writes
	rev    atomic.Uint64 // revision applied

	appendFailures atomic.Int64 // batches whose events could not be logged
	events         atomic.Int64 // events logged
	late           atomic.Int64 // updates that came after a newer one elsewhere
}

// fenceLockChunk is how many updates a batch checks under one hold of the
// index's read lock.
const fenceLockChunk = 64

// fenceSyncPage is the page size of a sync from the store.
const fenceSyncPage = 1000

// eventAppendTimeout bounds the logging of one batch's events (retries
// included).
const eventAppendTimeout = 5 * time.Second

func newFenceEngine(defs store.Fences, states store.FenceStates, log events.Log, res int) (*fenceEngine, error) {
	ix, err := fence.NewIndex(res)
	if err != nil {
		return nil, fmt.Errorf("fence index: %w", err)
	}
	return &fenceEngine{defs: defs, states: states, log: log, ix: ix, res: res}, nil
}

// sync applies the store's fence changes until the node holds at least
// minRev (or everything, with minRev 0).
func (fe *fenceEngine) sync(ctx context.Context, minRev uint64) (uint64, error) {
	fe.syncMu.Lock()
	defer fe.syncMu.Unlock()
	for {
		ch, err := fe.defs.FenceChanges(ctx, fe.rev.Load(), fenceSyncPage)
		if err != nil {
			return fe.rev.Load(), fmt.Errorf("read fence changes: %w", err)
		}
		// Decoding and covering with cells happen before the lock, so
		// updates are checked meanwhile against the fences held.
		fe.mu.RLock()
		ix := fe.ix
		fe.mu.RUnlock()
		prepared := prepareAll(ix, ch.Records)
		if ch.Reset {
			// A fresh index, filled before anyone sees it.
			nix, _ := fence.NewIndex(fe.res) // res was accepted once
			for i := range ch.Records {
				if prepared[i] != nil {
					_ = nix.PutPrepared(prepared[i]) // a fence that does not fit is left out
				}
			}
			fe.mu.Lock()
			fe.ix = nix
			fe.mu.Unlock()
		} else {
			// One fence per hold of the write lock, so updates being
			// checked wait for one insertion at most.
			for i, rec := range ch.Records {
				fe.mu.Lock()
				if prepared[i] == nil || fe.ix.PutPrepared(prepared[i]) != nil {
					fe.ix.Delete(rec.ID)
				}
				fe.mu.Unlock()
			}
		}
		fe.rev.Store(ch.Rev)
		if !ch.More && ch.Rev >= minRev {
			return ch.Rev, nil
		}
		if !ch.More {
			// The store has not reached minRev yet (a read replica behind):
			// try again shortly.
			select {
			case <-ctx.Done():
				return fe.rev.Load(), ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// prepareWorkers is how many fences a process prepares at once (all its
// matchers together): half its CPUs, at least one, so that a burst of
// fence writes leaves the other half to location updates.
var prepareWorkers = max(1, runtime.GOMAXPROCS(0)/2)

// prepareSlots holds one token per fence being prepared in the process.
var prepareSlots = make(chan struct{}, prepareWorkers)

// prepareAll prepares the fences of recs (nil for deletions and fences
// that do not decode), prepareWorkers at a time.
func prepareAll(ix *fence.Index, recs []store.FenceRecord) []*fence.Prepared {
	out := make([]*fence.Prepared, len(recs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(recs), prepareWorkers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(recs) {
					return
				}
				if recs[i].Data != nil {
					out[i] = sharedPrepared.get(ix, recs[i])
				}
			}
		})
	}
	wg.Wait()
	return out
}

// preparedCache shares prepared fences (decoded, covered with cells)
// between the matchers of one process, which all sync the same revisions
// at about the same time: `geomatch dev` covers a fence once, not once per
// matcher (a second matcher asking while the first prepares waits for it).
// A prepared fence is immutable; PutPrepared copies what it keeps. It is
// bounded: the oldest entries go first.
type preparedCache struct {
	mu    sync.Mutex
	byKey map[preparedKey]*preparedEntry
	order []preparedKey
	next  int
}

type preparedKey struct {
	id  string
	rev uint64
	res int
}

// preparedEntry is one fence, prepared once done is closed (p nil: it
// does not decode or cover).
type preparedEntry struct {
	done chan struct{}
	p    *fence.Prepared
}

// sharedPrepared is the process's cache.
var sharedPrepared = &preparedCache{byKey: map[preparedKey]*preparedEntry{}, order: make([]preparedKey, 0, preparedCacheLen)}

// preparedCacheLen bounds the cache: it only needs to span the fences the
// matchers of a process are syncing at once (prepared covers are large).
const preparedCacheLen = 1024

// get returns rec prepared for ix, preparing it (outside the cache's lock)
// unless another matcher of the process has or is; nil when it does not
// decode or cover (it was validated when put, so that is a fence of an
// older release).
func (c *preparedCache) get(ix *fence.Index, rec store.FenceRecord) *fence.Prepared {
	key := preparedKey{rec.ID, rec.Rev, ix.Res()}
	c.mu.Lock()
	e, ok := c.byKey[key]
	if !ok {
		e = &preparedEntry{done: make(chan struct{})}
		if len(c.order) < preparedCacheLen {
			c.order = append(c.order, key)
		} else {
			delete(c.byKey, c.order[c.next])
			c.order[c.next] = key
			c.next = (c.next + 1) % preparedCacheLen
		}
		c.byKey[key] = e
	}
	c.mu.Unlock()
	if ok {
		<-e.done
		return e.p
	}
	defer close(e.done)
	// A slot only while preparing: a call waiting above for another
	// matcher's preparation holds none.
	prepareSlots <- struct{}{}
	defer func() { <-prepareSlots }()
	f, err := decodeFence(rec)
	if err != nil {
		return nil
	}
	if e.p, err = ix.Prepare(f); err != nil {
		e.p = nil
	}
	return e.p
}

func decodeFence(rec store.FenceRecord) (*fence.Fence, error) {
	return fencev1.DecodeStoredFence(rec.Data)
}

// len returns the number of fences indexed.
func (fe *fenceEngine) len() int {
	fe.mu.RLock()
	defer fe.mu.RUnlock()
	return fe.ix.Len()
}

// fenceHit is one transition found for an update.
type fenceHit struct {
	f *fence.Fence
	t fence.Transition
}

// fenceWork is what a batch leaves for the fence engine after the index
// applied it: the updates applied, with the driver's previous state.
type fenceWork struct {
	u    index.Update
	prev index.Prev
	// claimed: the driver is new on this node; its fence set comes from
	// the store.
	claimed bool
	// cell and prevCell: the fine cells of the new and (0 when unknown)
	// the previous position.
	cell, prevCell h3.Cell
}

// process checks a batch's applied updates against the fences, saves the
// drivers' changed fence sets and logs the events, in that order.
//
// It returns the drivers whose update came late: another node already
// recorded a newer state of theirs (a retried or delayed update that
// reached this node after the driver moved on). Such an update logs
// nothing, and the caller drops the outdated copy it just indexed.
func (fe *fenceEngine) process(ctx context.Context, work []fenceWork) ([]lateCopy, error) {
	if len(work) == 0 {
		return nil, nil
	}
	var claimed []string
	for i := range work {
		if work[i].claimed {
			claimed = append(claimed, work[i].u.ID)
		}
	}
	var stored map[string]store.FenceState
	if len(claimed) > 0 {
		var err error
		if stored, err = fe.states.FenceStates(ctx, claimed); err != nil {
			return nil, fmt.Errorf("read fence states of %d drivers: %w", len(claimed), err)
		}
	}
	now := time.Now().UnixMilli()
	var changed map[string]store.FenceState // made on the first change: most batches have none
	var late []lateCopy
	var recs []events.Record
	var hits []fenceHit
	var before, after []string
	var payloads []byte // the fence events' encodings, one buffer for the batch
	fe.mu.RLock()
	for i := range work {
		if i%fenceLockChunk == fenceLockChunk-1 {
			// Let a waiting fence write in: a batch holds the read lock
			// for a chunk of updates at a time, not for all of it.
			fe.mu.RUnlock()
			fe.mu.RLock()
		}
		w := &work[i]
		if st, ok := stored[w.u.ID]; ok && w.claimed && st.TimestampMs >= w.u.TimestampMs {
			// Equal: this very update was processed already (a node died
			// before acknowledging it). Newer: it is late.
			if st.TimestampMs > w.u.TimestampMs {
				late = append(late, lateCopy{id: w.u.ID, newerMs: st.TimestampMs})
			}
			continue
		}
		hits = hits[:0]
		after = after[:0]
		class := w.u.VehicleClass
		changedSet := false
		if w.claimed || !w.prev.Live {
			// The fences the driver was in come from the store (none for a
			// driver never seen): transitions follow from the two sets.
			before = before[:0]
			for _, id := range stored[w.u.ID].IDs {
				if id != onlineMarker {
					before = append(before, id)
				}
			}
			slices.Sort(before)
			fe.ix.Containing(w.u.Pos, w.cell, func(f *fence.Fence) {
				if f.Applies(class) {
					after = append(after, f.ID)
				}
			})
			slices.Sort(after)
			hits = fe.setTransitions(before, after, hits)
			changedSet = !slices.Equal(before, after)
		} else {
			// One pass over the fences holding either position.
			fe.ix.Moves(&w.prev.Pos, w.prevCell, w.u.Pos, w.cell, class, func(f *fence.Fence, was, is bool) {
				var t fence.Transition
				switch {
				case was && is:
					t = fence.Inside
				case was:
					t, changedSet = fence.Exit, true
				case is:
					t, changedSet = fence.Enter, true
				default:
					t = fence.Cross
				}
				if is {
					after = append(after, f.ID)
				}
				if effective(f).Has(t) {
					hits = append(hits, fenceHit{f: f, t: t})
				}
			})
		}
		wasOnline := wasOnline(w, stored)
		nowOnline := nowStatus(w) != driver.StatusOffline
		if changedSet || wasOnline != nowOnline {
			state := make([]string, 0, len(after)+1)
			if nowOnline {
				state = append(state, onlineMarker) // sorts before every fence id
			}
			state = append(state, after...)
			slices.Sort(state)
			if changed == nil {
				changed = make(map[string]store.FenceState)
			}
			changed[w.u.ID] = store.FenceState{TimestampMs: w.u.TimestampMs, IDs: state}
		}
		switch {
		case nowOnline && !wasOnline:
			recs = append(recs, lifecycleRecord(w.u.ID, geomatchv1.DriverLifecycle_DRIVER_LIFECYCLE_ONLINE, w.u.Pos, w.u.TimestampMs, w.u.VehicleClass, now, &payloads))
		case wasOnline && !nowOnline:
			recs = append(recs, lifecycleRecord(w.u.ID, geomatchv1.DriverLifecycle_DRIVER_LIFECYCLE_OFFLINE, w.u.Pos, w.u.TimestampMs, w.u.VehicleClass, now, &payloads))
		}
		for _, h := range hits {
			recs = append(recs, fenceRecord(w, h, now, &payloads))
		}
	}
	fe.mu.RUnlock()
	// Events first: a node that dies between the two leaves the old state,
	// so the update's retry on the next owner logs the same events again
	// (the same ids: duplicates a sink drops), never none.
	if len(recs) > 0 {
		if err := fe.log.Append(ctx, recs); err != nil {
			return nil, fmt.Errorf("log %d events: %w", len(recs), err)
		}
		fe.events.Add(int64(len(recs)))
	}
	if len(changed) > 0 {
		if err := fe.states.SaveFenceStates(ctx, changed); err != nil {
			return nil, fmt.Errorf("save fence states of %d drivers: %w", len(changed), err)
		}
	}
	fe.late.Add(int64(len(late)))
	return late, nil
}

// lateCopy is a driver whose update reached the node after another node
// recorded a newer state at newerMs.
type lateCopy struct {
	id      string
	newerMs int64
}

// setTransitions returns the transitions between two sorted sets of fence
// ids (a driver's fences before and after an update) that each fence
// reports. The caller holds fe.mu.
func (fe *fenceEngine) setTransitions(before, after []string, hits []fenceHit) []fenceHit {
	for _, id := range before {
		if id == onlineMarker {
			continue
		}
		f, ok := fe.ix.Get(id)
		if !ok {
			continue // deleted meanwhile
		}
		t := fence.Exit
		if _, in := slices.BinarySearch(after, id); in {
			t = fence.Inside
		}
		if effective(f).Has(t) {
			hits = append(hits, fenceHit{f: f, t: t})
		}
	}
	for _, id := range after {
		if _, was := slices.BinarySearch(before, id); was || id == onlineMarker {
			continue
		}
		if f, ok := fe.ix.Get(id); ok && effective(f).Has(fence.Enter) {
			hits = append(hits, fenceHit{f: f, t: fence.Enter})
		}
	}
	return hits
}

// effective returns the transitions f reports (zero Detect: the default).
func effective(f *fence.Fence) fence.Detect {
	if f.Detect == 0 {
		return fence.DefaultDetect
	}
	return f.Detect
}

// onlineMarker, in a driver's stored fence state, says the driver is
// online (it cannot be a fence id: "!" is not in their alphabet).
const onlineMarker = "!online"

// wasOnline reports whether the driver was online before the update: by
// its previous status when the node held it, by its stored state when it
// is new on the node.
func wasOnline(w *fenceWork, stored map[string]store.FenceState) bool {
	switch {
	case w.claimed:
		return slices.Contains(stored[w.u.ID].IDs, onlineMarker)
	case w.prev.Live:
		return w.prev.Status != driver.StatusOffline
	}
	return false
}

// nowStatus is the driver's status after the update (as the index applies
// it: an unspecified status keeps the previous one, or is available).
func nowStatus(w *fenceWork) driver.Status {
	switch {
	case w.u.Status != driver.StatusUnspecified:
		return w.u.Status
	case w.prev.Live:
		return w.prev.Status
	}
	return driver.StatusAvailable
}

// lifecycleRecord is the log record of a driver going online, offline or
// silent (the update's or the last timestamp makes the id).
func lifecycleRecord(id string, l geomatchv1.DriverLifecycle, p geo.LatLng, ts int64, class string, now int64, buf *[]byte) events.Record {
	eid := events.EventID("driver", id, l.String(), strconv.FormatInt(ts, 10))
	// Encoded into the batch's buffer like fence events: a fleet coming
	// online is a lifecycle event per driver.
	start := len(*buf)
	*buf = appendDriverEvent(*buf, eid, now, id, l, p, ts, class)
	return events.Record{ID: eid, Key: id, Kind: events.KindDriver, TimeMs: now, Payload: (*buf)[start:len(*buf):len(*buf)]}
}

// expired logs the expiry of drivers of shards the node owns and forgets
// their fence states: a driver that comes back is online again and enters
// the fences it is in.
func (fe *fenceEngine) expired(ctx context.Context, gone []index.Driver) error {
	if len(gone) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	recs := make([]events.Record, 0, len(gone))
	states := make(map[string]store.FenceState, len(gone))
	var payloads []byte
	for _, d := range gone {
		recs = append(recs, lifecycleRecord(d.ID, geomatchv1.DriverLifecycle_DRIVER_LIFECYCLE_EXPIRED, d.Pos, d.TimestampMs, d.VehicleClass, now, &payloads))
		states[d.ID] = store.FenceState{TimestampMs: d.TimestampMs}
	}
	if err := fe.states.SaveFenceStates(ctx, states); err != nil {
		return fmt.Errorf("forget fence states of %d expired drivers: %w", len(gone), err)
	}
	if err := fe.log.Append(ctx, recs); err != nil {
		return fmt.Errorf("log %d expiries: %w", len(recs), err)
	}
	fe.events.Add(int64(len(recs)))
	return nil
}

// fenceRecord is the log record of one transition.
func fenceRecord(w *fenceWork, h fenceHit, now int64, buf *[]byte) events.Record {
	detect := fencev1.DetectOfTransition(h.t)
	id := events.EventID("fence", w.u.ID, h.f.ID, detect.String(), strconv.FormatInt(w.u.TimestampMs, 10))
	var prev *geo.LatLng
	if w.prev.Live && !w.claimed {
		prev = &w.prev.Pos
	}
	// The batch's payloads share one buffer (an event log keeps each as a
	// slice of it): one allocation per batch, not a message tree and its
	// encoding per event.
	start := len(*buf)
	*buf = appendFenceEvent(*buf, id, now, h.f, detect, w.u.ID, w.u.Pos, prev, w.u.TimestampMs, geomatchv1.DriverStatus(nowStatus(w)), w.u.VehicleClass)
	payload := (*buf)[start:len(*buf):len(*buf)]
	return events.Record{ID: id, Key: w.u.ID, Kind: events.KindFence, Set: h.f.Set, FenceID: h.f.ID, TimeMs: now, Payload: payload}
}

// Field numbers of geomatchv1.Event, FenceEvent and LatLng, for
// appendFenceEvent (TestFenceEventEncoding checks them against the
// generated code).
const (
	evEventID, evTimeMs, evFence                                                        = 1, 3, 4
	feFenceID, feSet, feDriverID, feDetect, fePosition, fePrevious                      = 1, 2, 3, 4, 5, 6
	feTimestampMs, feStatus, feVehicleClass, feLabels                                   = 7, 8, 9, 10
	llLat, llLng                                                                        = 1, 2
	evDriver                                                                            = 6
	dlDriverID, dlLifecycle, dlPosition, dlTimestampMs, dlVehicleClass                  = 1, 2, 3, 4, 5
	mapKey, mapValue                                                   protowire.Number = 1, 2
)

// appendFenceEvent appends the encoding of a geomatchv1.Event carrying a
// FenceEvent: what proto.Marshal of that message gives (labels in key
// order), without building the message. prev is nil when the event has
// no previous position.
func appendFenceEvent(b []byte, id string, now int64, f *fence.Fence, detect geomatchv1.FenceDetect, driverID string, pos geo.LatLng, prev *geo.LatLng, tsMs int64, st geomatchv1.DriverStatus, class string) []byte {
	b = appendString(b, evEventID, id)
	if now != 0 {
		b = protowire.AppendTag(b, evTimeMs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(now))
	}
	b, lenAt := beginMessage(b, evFence)
	b = appendString(b, feFenceID, f.ID)
	b = appendString(b, feSet, f.Set)
	b = appendString(b, feDriverID, driverID)
	if detect != 0 {
		b = protowire.AppendTag(b, feDetect, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(detect))
	}
	b = appendLatLng(b, fePosition, pos)
	if prev != nil {
		b = appendLatLng(b, fePrevious, *prev)
	}
	if tsMs != 0 {
		b = protowire.AppendTag(b, feTimestampMs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(tsMs))
	}
	if st != 0 {
		b = protowire.AppendTag(b, feStatus, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(st))
	}
	b = appendString(b, feVehicleClass, class)
	if len(f.Labels) > 0 {
		keys := make([]string, 0, len(f.Labels))
		for k := range f.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := f.Labels[k]
			b = protowire.AppendTag(b, feLabels, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(protowire.SizeTag(mapKey)*2+protowire.SizeBytes(len(k))+protowire.SizeBytes(len(v))))
			b = protowire.AppendTag(b, mapKey, protowire.BytesType)
			b = protowire.AppendString(b, k)
			b = protowire.AppendTag(b, mapValue, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
	}
	return endMessage(b, lenAt)
}

// appendDriverEvent appends the encoding of a geomatchv1.Event carrying a
// DriverLifecycleEvent: what proto.Marshal of that message gives, without
// building the message (TestDriverEventEncoding).
func appendDriverEvent(b []byte, id string, now int64, driverID string, l geomatchv1.DriverLifecycle, pos geo.LatLng, tsMs int64, class string) []byte {
	b = appendString(b, evEventID, id)
	if now != 0 {
		b = protowire.AppendTag(b, evTimeMs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(now))
	}
	b, lenAt := beginMessage(b, evDriver)
	b = appendString(b, dlDriverID, driverID)
	if l != 0 {
		b = protowire.AppendTag(b, dlLifecycle, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(l))
	}
	b = appendLatLng(b, dlPosition, pos)
	if tsMs != 0 {
		b = protowire.AppendTag(b, dlTimestampMs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(tsMs))
	}
	b = appendString(b, dlVehicleClass, class)
	return endMessage(b, lenAt)
}

// beginMessage appends the tag of message field num and room for its
// length (a 5-byte varint: messages under 4 GiB); endMessage, given where
// that room is, writes the length of what was appended since in as few
// bytes as it needs and moves the body up to it. The message's length
// need not be known before its fields are encoded.
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	lenAt := len(b)
	return append(b, 0, 0, 0, 0, 0), lenAt
}

// endMessage closes the message begun at lenAt (see beginMessage).
func endMessage(b []byte, lenAt int) []byte {
	body := lenAt + 5
	var lenBuf [5]byte
	l := protowire.AppendVarint(lenBuf[:0], uint64(len(b)-body))
	copy(b[lenAt:], l)
	if gap := 5 - len(l); gap > 0 {
		copy(b[lenAt+len(l):], b[body:])
		b = b[:len(b)-gap]
	}
	return b
}

// appendString appends a string field, omitted when empty (proto3).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendLatLng appends a LatLng message field (present, even when zero).
func appendLatLng(b []byte, num protowire.Number, p geo.LatLng) []byte {
	size := 0
	if p.Lat != 0 {
		size += protowire.SizeTag(llLat) + protowire.SizeFixed64()
	}
	if p.Lng != 0 {
		size += protowire.SizeTag(llLng) + protowire.SizeFixed64()
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if p.Lat != 0 {
		b = protowire.AppendTag(b, llLat, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(p.Lat))
	}
	if p.Lng != 0 {
		b = protowire.AppendTag(b, llLng, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(p.Lng))
	}
	return b
}

// counts counts the live drivers inside each listed fence among the
// drivers of shards (the node's own).
func (fe *fenceEngine) counts(ix *index.Index, shards []h3.Cell, ids []string) []*geomatchv1.FenceCount {
	var out []*geomatchv1.FenceCount
	for _, id := range ids {
		fe.mu.RLock()
		f, ok := fe.ix.Get(id)
		fe.mu.RUnlock()
		if !ok {
			continue
		}
		c := &geomatchv1.FenceCount{FenceId: id, ByVehicleClass: map[string]int64{}}
		b := f.Shape.Bound()
		for _, box := range splitLng(b.MinLat, b.MinLng, b.MaxLat, b.MaxLng) {
			ix.Within(shards, box[0], box[1], box[2], box[3], func(d index.Driver) bool {
				if (f.VehicleClass == "" || f.VehicleClass == d.VehicleClass) && f.Shape.Contains(d.Pos) {
					c.Inside++
					if d.Status == driver.StatusAvailable {
						c.Available++
					}
					c.ByVehicleClass[d.VehicleClass]++
				}
				return true
			})
		}
		out = append(out, c)
	}
	return out
}

// splitLng returns the boxes, within [-180, 180] in longitude, that a
// bounding box with longitudes possibly beyond ±180 (a shape across the
// antimeridian) covers.
func splitLng(minLat, minLng, maxLat, maxLng float64) [][4]float64 {
	if maxLng-minLng >= 360 {
		return [][4]float64{{minLat, -180, maxLat, 180}}
	}
	var out [][4]float64
	for _, shift := range []float64{-360, 0, 360} {
		lo, hi := max(minLng+shift, -180), min(maxLng+shift, 180)
		if lo <= hi {
			out = append(out, [4]float64{minLat, lo, maxLat, hi})
		}
	}
	return out
}

// followFences reads fence changes from the store every FenceSyncEvery
// until ctx is done. Run owns it.
func (n *Node) followFences(ctx context.Context) {
	t := time.NewTicker(n.cfg.FenceSyncEvery)
	defer t.Stop()
	failing := false
	for {
		_, err := n.fence.sync(ctx, 0)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			n.log.Warn("fence definitions: cannot read the store; checking updates against the fences held", "err", err)
			failing = true
		case err == nil && failing:
			n.log.Info("fence definitions: reading the store again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// processFences runs the fence engine on a batch's applied updates,
// retrying a failing store within eventAppendTimeout. A batch whose events
// cannot be logged is counted and logged: its updates stay applied.
func (n *Node) processFences(ctx context.Context, work []fenceWork) {
	ctx, cancel := context.WithTimeout(ctx, eventAppendTimeout)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		late, err := n.fence.process(ctx, work)
		if err == nil {
			if len(late) > 0 {
				n.ho.ring.RLock()
				for _, l := range late {
					n.evict(l.id, l.newerMs)
				}
				n.ho.ring.RUnlock()
			}
			return
		}
		select {
		case <-ctx.Done():
			k := n.fence.appendFailures.Add(1)
			n.log.Error("fence events of a batch could not be logged", "updates", len(work), "err", err, "failed_batches_total", k)
			return
		case <-time.After(delay):
			delay = min(2*delay, 500*time.Millisecond)
		}
	}
}

// SyncFences reads fence changes from the store until the node holds
// revision minRev, and returns the revision and the number of fences it
// holds.
func (n *Node) SyncFences(ctx context.Context, minRev uint64) (uint64, int, error) {
	if n.fence == nil {
		return 0, 0, fmt.Errorf("matcher %s runs without fences (no store or event log): %w", n.cfg.NodeID, errUnavailable)
	}
	rev, err := n.fence.sync(ctx, minRev)
	if err != nil {
		return rev, n.fence.len(), fmt.Errorf("%w: %w", err, errUnavailable)
	}
	return rev, n.fence.len(), nil
}

// FenceCounts counts the live drivers inside the listed fences among the
// shards the node owns, and returns the node's epoch.
func (n *Node) FenceCounts(ids []string) (uint64, []*geomatchv1.FenceCount, error) {
	if n.fence == nil {
		return 0, nil, fmt.Errorf("matcher %s runs without fences (no store or event log): %w", n.cfg.NodeID, errUnavailable)
	}
	n.ho.ring.RLock()
	defer n.ho.ring.RUnlock()
	m, _ := n.src.Current()
	var owned []h3.Cell
	for _, st := range n.ix.Shards() {
		if n.owns(m, st.Shard) {
			owned = append(owned, st.Shard)
		}
	}
	return m.Epoch(), n.fence.counts(n.ix, owned, ids), nil
}

// expire expires silent drivers; with fences on, it logs the expiry of
// those of shards the node owns (a copy of a driver that crossed to
// another node is not an expiry) and forgets their fence states.
func (n *Node) expire(ctx context.Context) int {
	if n.fence == nil {
		return n.ix.Expire()
	}
	m, _ := n.src.Current()
	var gone []index.Driver
	k := n.ix.ExpireFunc(func(d index.Driver) {
		if n.owns(m, d.Shard) && len(gone) < maxExpiryEvents {
			gone = append(gone, d)
		}
	})
	if len(gone) > 0 {
		ctx, cancel := context.WithTimeout(ctx, eventAppendTimeout)
		defer cancel()
		if err := n.fence.expired(ctx, gone); err != nil {
			n.log.Error("expiry events could not be logged", "drivers", len(gone), "err", err)
		}
	}
	return k
}

// maxExpiryEvents bounds the expiries one tick logs (a node back from a
// long pause expires everyone at once).
const maxExpiryEvents = 100_000
