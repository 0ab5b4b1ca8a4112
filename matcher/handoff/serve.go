package handoff

import (
	"maps"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/geomatch/geomatch/matcher/index"
	"github.com/geomatch/geomatch/shardmap"
)

// Request is a peer's Transfer request, as Serve reads it.
type Request struct {
	// To is the requesting node's member id.
	To string
	// Since, when not 0, limits the answer to the snapshots given up after
	// that epoch. Step.Request asks for every snapshot (0).
	Since uint64
	// Shards, when not empty, limits the answer to the snapshots of these
	// cells.
	Shards []h3.Cell
}

// Handover is a node's answer to a Transfer request: which snapshots it
// serves, and (Drivers) the copies it hands over from them.
type Handover struct {
	// Served are the snapshot cells served, sorted: the node marks them
	// Served.
	Served []h3.Cell
	// Covered are the cells of Served whose snapshots are complete (not
	// Cold): the requester reads none of them from the store.
	Covered []h3.Cell

	m     *shardmap.Map
	to    string
	snaps [][]index.Driver
}

// Serve picks the snapshots the node hands to req.To under m, the node's
// current ring: those given up after req.Since (and of req.Shards, when
// listed) whose cell is owned by req.To under m, or is no shard of m's
// layout (split or merged since: some of its drivers may fall in req.To's
// shards). Serve only picks; it is cheap, for the critical section that
// guards retired, and Drivers does the per-driver work afterwards.
func Serve(m *shardmap.Map, req Request, retired map[h3.Cell]Retired) Handover {
	h := Handover{m: m, to: req.To}
	var only map[h3.Cell]bool
	if len(req.Shards) > 0 {
		only = make(map[h3.Cell]bool, len(req.Shards))
		for _, c := range req.Shards {
			only[c] = true
		}
	}
	layout := m.Layout()
	for _, cell := range slices.Sorted(maps.Keys(retired)) {
		r := retired[cell]
		if r.Epoch <= req.Since || (only != nil && !only[cell]) {
			continue
		}
		if layout.IsShard(cell) && !Owns(m, req.To, cell) {
			continue
		}
		h.snaps = append(h.snaps, r.Drivers)
		h.Served = append(h.Served, cell)
		if !r.Cold {
			h.Covered = append(h.Covered, cell)
		}
	}
	return h
}

// Drivers returns the copies h hands over: of each driver, the newest copy
// the served snapshots hold, if it falls in a shard the requester owns
// under the node's ring. Each is then sent unless Withhold says otherwise
// at that moment.
func (h Handover) Drivers() []index.Driver {
	newest := map[string]int64{}
	for _, snap := range h.snaps {
		for i := range snap {
			newest[snap[i].ID] = max(newest[snap[i].ID], snap[i].TimestampMs)
		}
	}
	layout := h.m.Layout()
	var out []index.Driver
	for _, snap := range h.snaps {
		for _, d := range snap {
			if d.TimestampMs < newest[d.ID] || !Owns(h.m, h.to, layout.ShardOf(d.Pos)) {
				continue
			}
			out = append(out, d)
		}
	}
	return out
}

// Withhold reports whether a copy d listed by Handover.Drivers is kept back
// when it is about to be sent: when the node holds the driver live again
// (it came back into one of the node's shards, and that copy is the one
// that counts), or when log says a newer position superseded d.
func Withhold(d index.Driver, live bool, log *Log) bool {
	return live || log.Superseded(d.ID, d.TimestampMs)
}
