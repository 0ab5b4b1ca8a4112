package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// gateway is a fleet back end reporting its drivers' positions in
// UpdateLocations batches: every gatewayTick one slot of its drivers (a
// tenth), so each driver once a second. A slot keeps at most
// gatewayInflight batches unanswered (a batch may wait out a failover for
// one of its updates), so a driver may have a few updates in flight, in
// timestamp order, as on a stream. Outcomes are recorded per update like a
// stream's.
type gateway struct {
	l       *Load
	conn    *grpc.ClientConn
	drivers []*driver
	busy    [gatewaySlots]atomic.Int32 // batches in flight per slot
}

// startGateways makes the drivers of BatchedUpdatesPerS (one update a
// second each) and starts the gateways that report them; their drivers
// take part in the readback like streaming ones.
func (l *Load) startGateways(r *rand.Rand) {
	n := int(l.cfg.BatchedUpdatesPerS)
	if n <= 0 {
		return
	}
	gws := make([]*gateway, min(maxGateways, (n+gatewaySlots-1)/gatewaySlots))
	for i := range gws {
		gws[i] = &gateway{l: l, conn: l.conns[i%len(l.conns)]}
	}
	for i := range n {
		d := &driver{l: l, id: fmt.Sprintf("g%05d", i), interval: time.Second,
			lat: queryArea[0] + (r.Float64()*2-1)*queryHalfLat, lng: queryArea[1] + (r.Float64()*2-1)*queryHalfLng,
			box: [4]float64{queryArea[0] - queryHalfLat, queryArea[0] + queryHalfLat, queryArea[1] - queryHalfLng, queryArea[1] + queryHalfLng},
			r:   rand.New(rand.NewPCG(l.cfg.Seed, uint64(i)+2_000_000))}
		l.drivers = append(l.drivers, d)
		gws[i%len(gws)].drivers = append(gws[i%len(gws)].drivers, d)
	}
	for i, g := range gws {
		l.wg.Add(1)
		go g.run(time.Duration(i) * gatewayTick / time.Duration(len(gws)))
	}
}

// run sends batches until traffic stops; a slot with gatewayInflight
// batches unanswered when its turn comes skips it (counted), so the
// gateway never queues.
func (g *gateway) run(offset time.Duration) {
	defer g.l.wg.Done()
	t := time.NewTimer(offset)
	defer t.Stop()
	select {
	case <-g.l.traffic.Done():
		return
	case <-t.C:
	}
	tick := time.NewTicker(gatewayTick)
	defer tick.Stop()
	for slot := 0; ; slot = (slot + 1) % gatewaySlots {
		if g.busy[slot].Add(1) <= gatewayInflight {
			g.l.wg.Add(1)
			go func(slot int) { // owned by the load's wait group
				defer g.l.wg.Done()
				defer g.busy[slot].Add(-1)
				g.send(slot)
			}(slot)
		} else {
			g.busy[slot].Add(-1)
			g.l.skippedUpdates.Add(int64(g.slotLen(slot)))
		}
		select {
		case <-g.l.traffic.Done():
			return
		case <-tick.C:
		}
	}
}

// slotLen is the number of the gateway's drivers in slot.
func (g *gateway) slotLen(slot int) int {
	n := len(g.drivers) / gatewaySlots
	if slot < len(g.drivers)%gatewaySlots {
		n++
	}
	return n
}

// send moves the drivers of slot one step and reports them in one batch.
func (g *gateway) send(slot int) {
	h := g.l.h
	var (
		req  geomatchv1.UpdateLocationsRequest
		sent []pendingUpdate
		who  []*driver
	)
	for i := slot; i < len(g.drivers); i += gatewaySlots {
		d := g.drivers[i]
		d.mu.Lock()
		u := d.stepLocked() // the call answers it: nothing pending
		d.mu.Unlock()
		req.Updates = append(req.Updates, d.location(u))
		sent, who = append(sent, u), append(who, d)
	}
	if len(sent) == 0 {
		return // a gateway of fewer drivers than slots
	}
	g.l.batchedSent.Add(int64(len(sent)))
	// The call outlives the end of traffic: its outcome is recorded.
	ctx, cancel := context.WithTimeout(g.l.life, gatewayTimeout)
	resp, err := geomatchv1.NewDriverServiceClient(g.conn).UpdateLocations(ctx, &req)
	cancel()
	end := h.Now()
	rejected := make(map[int32]*geomatchv1.Rejection, len(resp.GetRejected()))
	for _, rj := range resp.GetRejected() {
		rejected[rj.GetIndex()] = rj
	}
	for i, u := range sent {
		op := Op{Kind: KindUpdate, Driver: who[i].id, TS: u.ts, Lat: u.lat, Lng: u.lng, Start: u.start, End: end, Outcome: OK}
		switch rj := rejected[int32(i)]; {
		case err != nil:
			st := status.Convert(err)
			op.Outcome, op.Code, op.Detail = Rejected, st.Code().String(), "batch call failed: "+st.Message()
		case rj != nil:
			op.Outcome, op.Code, op.Detail = Rejected, rj.GetReason().String(), rj.GetMessage()
		}
		h.Add(op)
	}
}
