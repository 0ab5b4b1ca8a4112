package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/fence"
)

// The names the fence comparison uses on a Tile38 server: it replaces the
// collection Tile38FenceKey and every channel named Tile38ChannelPrefix*
// (DROP and PDELCHAN before and after a run), and touches nothing else.
const (
	Tile38FenceKey      = "fencecmp"
	Tile38ChannelPrefix = "cmp-"
)

// tile38Setchan returns the SETCHAN command of fence f: detect enter,exit,
// a polygon as WITHIN … OBJECT geojson, a circle as WITHIN … CIRCLE or
// NEARBY … POINT (mode).
func tile38Setchan(f cmpFence, mode Tile38CircleMode) []any {
	args := []any{"SETCHAN", f.pb.GetFenceId()}
	if c := f.circle; c != nil {
		lat, lng, r := c.GetCenter().GetLat(), c.GetCenter().GetLng(), c.GetRadiusM()
		if mode == Tile38CircleNearby {
			return append(args, "NEARBY", Tile38FenceKey, "FENCE", "DETECT", "enter,exit", "POINT", lat, lng, r)
		}
		return append(args, "WITHIN", Tile38FenceKey, "FENCE", "DETECT", "enter,exit", "CIRCLE", lat, lng, r)
	}
	return append(args, "WITHIN", Tile38FenceKey, "FENCE", "DETECT", "enter,exit", "OBJECT", f.pb.GetGeojson())
}

// tile38Msg is the part of a Tile38 fence message the comparison reads.
type tile38Msg struct {
	Command string `json:"command"`
	Detect  string `json:"detect"`
	Hook    string `json:"hook"`
	ID      string `json:"id"`
	Object  struct {
		Type        string     `json:"type"`
		Coordinates [2]float64 `json:"coordinates"`
	} `json:"object"`
}

// parseTile38Msg reads one channel message into an event of the trace:
// the hook names the fence, the id the driver, and the object's exact
// coordinates the step (the trace's positions are distinct per driver;
// coordinates print and parse exactly both ways).
func parseTile38Msg(payload string, tr *Trace, driverIdx func(string) (int32, bool), fenceIdx map[string]int32) (fenceEvent, bool) {
	var m tile38Msg
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.Command != "set" || m.Object.Type != "Point" {
		return fenceEvent{}, false
	}
	d, ok := driverIdx(m.ID)
	if !ok {
		return fenceEvent{}, false
	}
	f, ok := fenceIdx[m.Hook]
	if !ok {
		return fenceEvent{}, false
	}
	var t fence.Transition
	switch m.Detect {
	case "enter":
		t = fence.Enter
	case "exit":
		t = fence.Exit
	case "inside":
		t = fence.Inside
	case "cross":
		t = fence.Cross
	default:
		return fenceEvent{}, false
	}
	lng, lat := m.Object.Coordinates[0], m.Object.Coordinates[1]
	for s := range tr.Steps {
		if p := tr.Steps[s][d]; p.lat == lat && p.lng == lng {
			return fenceEvent{step: int32(s), driver: d, fence: f, detect: t}, true
		}
	}
	return fenceEvent{}, false
}

// replayTile38 makes one channel per fence on the Tile38 at
// cc.Tile38Addr, subscribes to them (PSUBSCRIBE), replays the trace with
// pipelined SET key id POINT lat lon, one step at a time, and collects the
// messages; then it removes its channels and collection.
func replayTile38(ctx context.Context, cc CompareConfig, tr *Trace, fences []cmpFence) (*CompareSide, error) {
	side := &CompareSide{Target: "tile38 " + cc.Tile38Addr}
	if err := CheckLoopback(cc.Tile38Addr); err != nil {
		return side, err
	}
	c := redis.NewClient(&redis.Options{Addr: cc.Tile38Addr, PoolSize: cc.Concurrency + 2, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return side, fmt.Errorf("tile38 %s: %w", cc.Tile38Addr, err)
	}
	clean := func(ctx context.Context) error {
		if err := c.Do(ctx, "PDELCHAN", Tile38ChannelPrefix+"*").Err(); err != nil {
			return fmt.Errorf("PDELCHAN: %w", err)
		}
		if err := c.Do(ctx, "DROP", Tile38FenceKey).Err(); err != nil {
			return fmt.Errorf("DROP: %w", err)
		}
		return nil
	}
	if err := clean(ctx); err != nil {
		return side, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = clean(dctx)
	}()
	fenceIdx := make(map[string]int32, len(fences))
	setupStart := time.Now()
	for i := 0; i < len(fences); i += 100 {
		pipe := c.Pipeline()
		for k := i; k < min(i+100, len(fences)); k++ {
			fenceIdx[fences[k].pb.GetFenceId()] = int32(k)
			pipe.Do(ctx, tile38Setchan(fences[k], cc.Tile38Circles)...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return side, fmt.Errorf("SETCHAN: %w", err)
		}
	}
	side.SetupS = time.Since(setupStart).Seconds()

	// Every fence id starts with the run's prefix: the common prefix of
	// the first fence's id up to its last '-'.
	first := fences[0].pb.GetFenceId()
	pattern := first[:lastDash(first)+1] + "*"
	sctx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	ps := c.PSubscribe(sctx, pattern)
	defer ps.Close()
	if _, err := ps.Receive(sctx); err != nil {
		return side, fmt.Errorf("PSUBSCRIBE %s: %w", pattern, err)
	}
	var mu sync.Mutex
	var payloads []string
	var received atomic.Int64
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for {
			m, err := ps.ReceiveMessage(sctx)
			if err != nil {
				if sctx.Err() != nil {
					return
				}
				continue // a ping reply or a transient error: go-redis reconnects
			}
			mu.Lock()
			payloads = append(payloads, m.Payload)
			mu.Unlock()
			received.Add(1)
		}
	}()
	send := func(ctx context.Context, batch []Update) (int, error) {
		pipe := c.Pipeline()
		for _, u := range batch {
			pipe.Do(ctx, "SET", Tile38FenceKey, u.ID, "POINT", u.Lat, u.Lng)
		}
		cmds, err := pipe.Exec(ctx)
		if err == nil {
			return 0, nil
		}
		failed := 0
		for _, cm := range cmds {
			if cm.Err() != nil {
				failed++
			}
		}
		return max(failed, 1), err
	}
	cpu0 := procCPUOr0(cc.Tile38PID)
	side.Replay = replayTrace(ctx, cc, tr, "replay", func(int) int64 { return 0 }, send)
	if cc.Tile38PID != 0 {
		side.ServerCPUSeconds = (procCPUOr0(cc.Tile38PID) - cpu0).Seconds()
	}
	side.SettleS = settle(ctx, received.Load, cc.SettleTimeout).Seconds()
	stopSub()
	<-subDone
	driverIdx := driverIndex(tr)
	for _, p := range payloads {
		e, ok := parseTile38Msg(p, tr, driverIdx, fenceIdx)
		if !ok {
			side.Unplaced++
			continue
		}
		side.events = append(side.events, e)
	}
	side.count()
	return side, nil
}

// lastDash is the index of the last '-' of s, -1 when none.
func lastDash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			return i
		}
	}
	return -1
}
