package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/shardmap"
)

// The admin commands that read or write Consul directly: status and ring
// with --consul (they show the ring writer and the settings), and changes
// with --consul and no --target, for a cluster with no router up.

// consulErr says plainly that Consul could not be reached.
func (a *admin) consulErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("consul at %s is unreachable (no answer within %v): %w", a.cfg.Addr, a.timeout, err)
	}
	return fmt.Errorf("consul at %s: %w", a.cfg.Addr, err)
}

// currentRing reads the ring record.
func (a *admin) currentRing(ctx context.Context) (membership.Record, *shardmap.Map, error) {
	rec, _, found, err := membership.ReadRing(ctx, a.consul, a.cfg)
	if err != nil {
		return rec, nil, a.consulErr(err)
	}
	if !found {
		return rec, nil, fmt.Errorf("no ring at %s in consul %s: no matcher with --consul has started", a.cfg.RingKey(), a.cfg.Addr)
	}
	m, err := shardmap.NewMap(rec.Doc)
	if err != nil {
		return rec, nil, fmt.Errorf("ring in consul: %w", err)
	}
	return rec, m, nil
}

// statusConsul shows the matchers registered in Consul, the ring record
// and its writer, with load figures from the router when one answers.
func (a *admin) statusConsul(ctx context.Context) error {
	rec, m, err := a.currentRing(ctx)
	if err != nil {
		return err
	}
	entries, _, err := a.consul.Health().Service(a.cfg.ServiceName(), "", false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return a.consulErr(err)
	}
	writer := "none"
	if pair, _, err := a.consul.KV().Get(a.cfg.WriterKey(), (&api.QueryOptions{}).WithContext(ctx)); err == nil && pair != nil && pair.Session != "" {
		writer = string(pair.Value)
	}
	load := map[string]*geomatchv1.NodeStatus{}
	routerNote := ""
	if rc, done, err := a.routerAdmin(); err == nil {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := rc.GetClusterStatus(rctx, &geomatchv1.GetClusterStatusRequest{})
		cancel()
		done()
		if err != nil {
			routerNote = fmt.Sprintf("(no load figures: router at %s: %v)", a.target, err)
		} else {
			for _, n := range st.GetNodes() {
				load[n.GetId()] = n
			}
		}
	}
	var nodes []statusNode
	for _, e := range entries {
		n := statusNode{ID: e.Service.ID, Addr: fmt.Sprintf("%s:%d", e.Service.Address, e.Service.Port), Health: e.Checks.AggregatedStatus(), State: "out of ring"}
		if mem, ok := m.Member(n.ID); ok {
			n.Weight, n.State = mem.Weight, "active"
			if m.Drained(n.ID) {
				n.State = "drained"
			}
		}
		if l := load[n.ID]; l != nil {
			n.Drivers, n.Shards = l.GetDrivers(), l.GetShards()
		}
		nodes = append(nodes, n)
	}
	if a.json {
		return a.emit(map[string]any{"epoch": rec.Doc.Epoch, "writer": writer, "written_at": rec.WrittenAt, "reason": rec.Reason, "nodes": nodes})
	}
	fmt.Fprintf(a.out, "ring epoch %d, writer %s; last written %s ago by %s (%s)\n", rec.Doc.Epoch, writer,
		time.Since(rec.WrittenAt).Round(time.Second), rec.Writer, rec.Reason)
	if err := a.statusTable(nodes); err != nil {
		return err
	}
	if routerNote != "" {
		fmt.Fprintln(a.out, routerNote)
	}
	return nil
}

// ringConsul shows the ring record and the settings in Consul.
func (a *admin) ringConsul(ctx context.Context) error {
	rec, m, err := a.currentRing(ctx)
	if err != nil {
		return err
	}
	s, _, _, err := membership.ReadSettings(ctx, a.consul, a.cfg)
	if err != nil {
		return a.consulErr(err)
	}
	if a.json {
		return a.emit(map[string]any{"record": rec, "settings": s})
	}
	d := rec.Doc
	fmt.Fprintf(a.out, "epoch %d (written by %s, %s)\nshard resolution %d, max split depth %d, %d vnodes, bounded load %g\n",
		d.Epoch, rec.Writer, rec.Reason, d.ShardRes, d.MaxSplitDepth, d.VNodes, s.Balance)
	tw := a.table()
	fmt.Fprintln(tw, "MEMBER\tADDR\tWEIGHT\tDRAINED")
	for _, mem := range m.Members() {
		fmt.Fprintf(tw, "%s\t%s\t%g\t%v\n", mem.ID, mem.Addr, mem.Weight, m.Drained(mem.ID))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "splits: %d %v\npins: %d\nbounded-load overrides: %d\n", len(d.Splits), d.Splits, len(d.Pins), len(d.Overrides))
	for _, c := range slices.Sorted(func(yield func(shardmap.Cell) bool) {
		for c := range d.Pins {
			if !yield(c) {
				return
			}
		}
	}) {
		fmt.Fprintf(a.out, "  %s -> %s\n", c, d.Pins[c])
	}
	return nil
}

// applyConsul writes change to the settings in Consul and waits for the
// ring that includes it; touched are the shards to report.
func (a *admin) applyConsul(ctx context.Context, what string, change membership.Change, touched []shardmap.Cell) (*geomatchv1.RingChange, error) {
	before, rec, err := membership.ApplySettings(ctx, a.consul, a.cfg, change)
	var ce *membership.ChangeError
	switch {
	case errors.As(err, &ce):
		return nil, fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, membership.ErrUnavailable):
		return nil, a.consulErr(err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	after, err := shardmap.NewMap(rec.Doc)
	if err != nil {
		return nil, fmt.Errorf("ring in consul: %w", err)
	}
	return router.RingChangeOf(what, before, after, touched), nil
}

// changeConsul makes a ring change with a direct write to Consul.
func (a *admin) changeConsul(ctx context.Context, cmd string, args []string) (*geomatchv1.RingChange, error) {
	switch cmd {
	case "drain":
		return a.applyConsul(ctx, "drain "+args[0], membership.Drain(args[0]), nil)
	case "undrain":
		return a.applyConsul(ctx, "undrain "+args[0], membership.Undrain(args[0]), nil)
	}
	cell, err := membership.ParseCell(args[0])
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cmd, args[0], err)
	}
	switch cmd {
	case "move":
		return a.applyConsul(ctx, fmt.Sprintf("move %s to %s", cell, args[1]), membership.Move(cell, args[1]), []shardmap.Cell{cell})
	case "unpin":
		return a.applyConsul(ctx, "unpin "+cell.String(), membership.Unpin(cell), []shardmap.Cell{cell})
	case "split":
		return a.applyConsul(ctx, "split "+cell.String(), membership.Split(cell), cell.ImmediateChildren())
	case "merge":
		return a.applyConsul(ctx, "merge "+cell.String(), membership.Merge(cell), []shardmap.Cell{cell})
	}
	return nil, fmt.Errorf("%s: not a ring change", cmd)
}

// rebalanceConsul plans from the router's shard loads and the ring in
// Consul, and with req.Apply pins the moves with a direct write.
func (a *admin) rebalanceConsul(ctx context.Context, req *geomatchv1.RebalanceRequest) (*geomatchv1.RebalancePlan, error) {
	_, m, err := a.currentRing(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := a.listShards(ctx, "", 100000)
	if err != nil {
		return nil, err
	}
	var loads []shardmap.ShardLoad
	for _, s := range resp.GetShards() {
		c, err := membership.ParseCell(s.GetCell())
		if err != nil {
			return nil, fmt.Errorf("router at %s listed shard %q: %w", a.target, s.GetCell(), err)
		}
		loads = append(loads, shardmap.ShardLoad{Cell: c, Owner: s.GetOwner(), Drivers: s.GetDrivers()})
	}
	plan := shardmap.PlanRebalance(loads, m.ActiveIDs(), req.GetTarget(), int(req.GetMaxMoves()))
	out := router.RebalancePlanOf(plan, m.Epoch())
	if !req.GetApply() || len(plan.Moves) == 0 {
		return out, nil
	}
	rc, err := a.applyConsul(ctx, fmt.Sprintf("rebalance (%d moves)", len(plan.Moves)), membership.ApplyPins(plan.Moves), nil)
	if err != nil {
		return nil, err
	}
	out.Applied, out.EpochBefore, out.Epoch = true, rc.GetEpochBefore(), rc.GetEpoch()
	return out, nil
}
