package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/shardmap"
)

// Errors of applying a Change, besides the *ChangeError of the change
// itself.
var (
	// ErrFixedRing: the ring cannot be changed at run time (a static
	// cluster, whose every process computes the ring from its flags).
	ErrFixedRing = errors.New("the ring of a static cluster (--peers) is fixed: give every router and matcher the same new ring flags and restart them")
	// ErrUnavailable: the settings store could not be read or written
	// (Consul unreachable, no ring yet).
	ErrUnavailable = errors.New("ring settings unavailable")
	// ErrNotApplied: the settings were written, but no ring including
	// them was published in time (no ring writer running).
	ErrNotApplied = errors.New("ring settings written but not applied")
)

// DefaultApplyTimeout bounds how long a settings change waits for the ring
// that includes it: the ring writer settles for 0.5 s and writes within a
// second when the cluster is healthy, so ten is a stuck writer.
const DefaultApplyTimeout = 10 * time.Second

// SettingsOf returns settings that compose d again from its members: its
// layout, vnodes, splits, pins and drained members, bounded load off.
func SettingsOf(d shardmap.Doc) Settings {
	return Settings{
		ShardRes:      d.ShardRes,
		MaxSplitDepth: d.MaxSplitDepth,
		VNodes:        d.VNodes,
		Splits:        slices.Clone(d.Splits),
		Pins:          maps.Clone(d.Pins),
		Drained:       slices.Clone(d.Drained),
	}
}

// ChangeSettings applies change to the settings of the current ring
// (SettingsOf its document), and publishes the ring they compose at the
// next epoch; bounded-load overrides still valid are kept. It returns the
// ring the change was checked against and the new one. A refused change,
// or one that yields an invalid ring, publishes nothing. A static Local
// refuses every change (ErrFixedRing).
func (l *Local) ChangeSettings(_ context.Context, change Change) (before, after *shardmap.Map, err error) {
	if l.kind == "static" {
		return nil, nil, ErrFixedRing
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	before = l.cur
	old := before.Doc()
	s := SettingsOf(old)
	if err := change(&s, before); err != nil {
		return before, nil, err
	}
	doc, err := Compose(s, old.Members, nil, old.Epoch+1)
	if err != nil {
		return before, nil, fmt.Errorf("ring settings: %w", err)
	}
	if layout, err := shardmap.NewLayout(doc.ShardRes, doc.MaxSplitDepth, doc.Splits); err == nil {
		for c, id := range old.Overrides {
			if layout.IsShard(c) && !slices.Contains(doc.Drained, id) {
				if doc.Overrides == nil {
					doc.Overrides = map[shardmap.Cell]string{}
				}
				doc.Overrides[c] = id
			}
		}
	}
	if after, err = l.publishLocked(doc); err != nil {
		return before, nil, err
	}
	return before, after, nil
}

// ApplySettings applies change to the settings in Consul (checked against
// the ring record read first, written with check-and-set) and waits until
// the ring writer has published a ring record that includes it, at most
// cfg.ApplyTimeout. It returns the ring the change was checked against and
// the record that includes it. Errors: the change's own *ChangeError,
// ErrConflict, ErrUnavailable (Consul unreachable, no ring or settings
// yet), ErrNotApplied (written, but no writer applied it in time).
func ApplySettings(ctx context.Context, c *api.Client, cfg ConsulConfig, change Change) (before *shardmap.Map, after Record, err error) {
	before, after, _, err = applySettings(ctx, c, cfg, change)
	return before, after, err
}

// applySettings is ApplySettings, also returning the modify index of the
// ring record.
func applySettings(ctx context.Context, c *api.Client, cfg ConsulConfig, change Change) (before *shardmap.Map, after Record, index uint64, err error) {
	cfg.fill()
	rec, _, found, err := ReadRing(ctx, c, cfg)
	if err != nil {
		return nil, Record{}, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !found {
		return nil, Record{}, 0, fmt.Errorf("%w: no ring at %s in consul %s: no matcher with --consul has started", ErrUnavailable, cfg.RingKey(), cfg.Addr)
	}
	if before, err = shardmap.NewMap(rec.Doc); err != nil {
		return nil, Record{}, 0, fmt.Errorf("ring in consul: %w", err)
	}
	var refused error // the change's own error, or invalid settings it made
	_, idx, err := UpdateSettings(ctx, c, cfg, func(s *Settings) error {
		if refused = change(s, before); refused == nil {
			refused = s.Validate()
		}
		return refused
	})
	switch {
	case err != nil && err == refused, errors.Is(err, ErrConflict):
		return before, Record{}, 0, err
	case err != nil:
		return before, Record{}, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.ApplyTimeout)
	defer cancel()
	var wait uint64
	for {
		q := (&api.QueryOptions{WaitIndex: wait, WaitTime: blockingWait, RequireConsistent: true}).WithContext(wctx)
		pair, meta, err := c.KV().Get(cfg.RingKey(), q)
		if err == nil && pair != nil {
			var r Record
			if json.Unmarshal(pair.Value, &r) == nil && r.SettingsIndex >= idx {
				return before, r, pair.ModifyIndex, nil
			}
		}
		if wctx.Err() != nil {
			if ctx.Err() != nil {
				return before, Record{}, 0, fmt.Errorf("ring settings written (index %d), not yet applied: %w", idx, ctx.Err())
			}
			return before, Record{}, 0, fmt.Errorf("%w: settings written (index %d), but no ring writer applied them within %v: are matchers running?", ErrNotApplied, idx, cfg.ApplyTimeout)
		}
		if err != nil {
			sleep(wctx, 100*time.Millisecond)
			continue
		}
		if meta.LastIndex < wait { // Consul's index went back (restored)
			wait = 0
			continue
		}
		wait = meta.LastIndex
	}
}

// ChangeSettings applies change through the settings in Consul
// (ApplySettings) and publishes the ring that includes it at once, so the
// caller routes by it on return. It returns the ring the change was
// checked against and the one that includes it (at the same epoch when the
// change moved nothing and the writer only acknowledged it).
func (c *Consul) ChangeSettings(ctx context.Context, change Change) (before, after *shardmap.Map, err error) {
	before, rec, index, err := applySettings(ctx, c.client, c.cfg, change)
	if err != nil {
		return before, nil, err
	}
	if after, err = shardmap.NewMap(rec.Doc); err != nil {
		return before, nil, fmt.Errorf("ring in consul: %w", err)
	}
	c.publish(rec, index, "consul")
	return before, after, nil
}
