package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// adminCommands are the subcommands of `geomatch admin`.
var adminCommands = []struct{ name, args, summary string }{
	{"status", "", "nodes, their health and load, the ring epoch and the ring writer"},
	{"ring", "", "the ring document: members, weights, drains, splits, pins"},
	{"shards", "[--node ID] [--limit N]", "shards with owner, drivers, update and query rates, busiest first"},
	{"move", "CELL NODE", "pin a shard to a node"},
	{"unpin", "CELL", "remove a shard's pin (it goes back to the ring)"},
	{"drain", "NODE", "move every shard off a node (it stays a member)"},
	{"undrain", "NODE", "give a drained node shards again"},
	{"split", "CELL", "split a shard into its 7 children (spreads a hot spot)"},
	{"merge", "CELL", "undo the split of CELL and of every cell below it"},
	{"rebalance", "[--apply] [--target R]", "plan shard moves that bring drivers per node within R of the average; --apply pins them"},
	{"token", "--subject S --role R [--ttl D]", "mint a signed token for the public API (key: --auth-key-file or GEOMATCH_AUTH_KEY); no Consul needed"},
}

func adminUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: geomatch admin [flags] COMMAND [args]\n\nShows and changes a cluster whose membership is in Consul. Changes are written\nto the ring settings in Consul; the elected ring writer turns them into a new\nring epoch, which this command waits for.\n\nCommands:\n")
	for _, c := range adminCommands {
		fmt.Fprintf(w, "  %-9s %-24s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nFlags (before the command; each also read from its environment twin):\n  --consul ADDR   [GEOMATCH_CONSUL] Consul HTTP address (default 127.0.0.1:8500)\n  --router ADDR   [GEOMATCH_ROUTER] a router's public API, for load figures (default 127.0.0.1:50051)\n  --json          machine-readable output\n  --consul-token, --consul-prefix, --consul-service, --consul-ca, --consul-cert, --consul-key as for the servers\n  --tls-ca, --tls-cert, --tls-key, --token   TLS and token for --router\n")
}

// admin is one admin invocation's connections.
type admin struct {
	cfg        membership.ConsulConfig
	consul     *api.Client
	routerAddr string
	routerSec  clientFlags
	json       bool
	out        io.Writer
	timeout    time.Duration
}

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { adminUsage(stderr) }
	var cf consulFlags
	var sec clientFlags
	cf.register(fs)
	sec.register(fs)
	routerAddr := fs.String("router", "127.0.0.1:50051", "a router's public API address")
	asJSON := fs.Bool("json", false, "machine-readable output")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for Consul, the router and a new ring epoch")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if err := fillFromEnv(fs); err != nil {
		return err
	}
	if cf.addr == "" {
		cf.addr = "127.0.0.1:8500"
	}
	rest := fs.Args()
	if len(rest) == 0 {
		adminUsage(stderr)
		return errUsage
	}
	if rest[0] == "token" {
		return runAdminToken(rest[1:], stdout, stderr)
	}
	client, err := membership.NewConsulClient(cf.config())
	if err != nil {
		return err
	}
	a := &admin{cfg: cf.config(), consul: client, routerAddr: *routerAddr, routerSec: sec, json: *asJSON, out: stdout, timeout: *timeout}
	a.cfg.Timeout = *timeout
	ctx, cancel := context.WithTimeout(ctx, *timeout+5*time.Second)
	defer cancel()
	cmd, cargs := rest[0], rest[1:]
	need := func(n int, what string) error {
		if len(cargs) != n {
			return fmt.Errorf("%s: want %s", cmd, what)
		}
		return nil
	}
	switch cmd {
	case "status":
		return a.status(ctx)
	case "ring":
		return a.ring(ctx)
	case "shards":
		return a.shards(ctx, cargs)
	case "move":
		if err := need(2, "CELL NODE"); err != nil {
			return err
		}
		return a.move(ctx, cargs[0], cargs[1])
	case "unpin":
		if err := need(1, "CELL"); err != nil {
			return err
		}
		return a.unpin(ctx, cargs[0])
	case "drain", "undrain":
		if err := need(1, "NODE"); err != nil {
			return err
		}
		return a.drain(ctx, cargs[0], cmd == "drain")
	case "split", "merge":
		if err := need(1, "CELL"); err != nil {
			return err
		}
		return a.split(ctx, cargs[0], cmd == "split")
	case "rebalance":
		return a.rebalance(ctx, cargs)
	}
	fmt.Fprintf(stderr, "geomatch admin: unknown command %q\n\n", cmd)
	adminUsage(stderr)
	return errUsage
}

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

// routerAdmin dials the router's AdminService.
func (a *admin) routerAdmin() (geomatchv1.AdminServiceClient, func(), error) {
	opts, err := a.routerSec.dialOptions(a.routerAddr)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(a.routerAddr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("router at %s: %w", a.routerAddr, err)
	}
	return geomatchv1.NewAdminServiceClient(conn), func() { conn.Close() }, nil
}

func (a *admin) emit(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *admin) table() *tabwriter.Writer { return tabwriter.NewWriter(a.out, 2, 4, 2, ' ', 0) }

func (a *admin) status(ctx context.Context) error {
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
			routerNote = fmt.Sprintf("(no load figures: router at %s: %v)", a.routerAddr, err)
		} else {
			for _, n := range st.GetNodes() {
				load[n.GetId()] = n
			}
		}
	}
	type node struct {
		ID, Addr, Health, State string
		Weight                  float64
		Drivers                 int64
		Shards                  int32
	}
	drained := map[string]bool{}
	for _, id := range rec.Doc.Drained {
		drained[id] = true
	}
	var nodes []node
	for _, e := range entries {
		n := node{ID: e.Service.ID, Addr: fmt.Sprintf("%s:%d", e.Service.Address, e.Service.Port), Health: e.Checks.AggregatedStatus(), State: "out of ring"}
		if mem, ok := m.Member(n.ID); ok {
			n.Weight, n.State = mem.Weight, "active"
			if drained[n.ID] {
				n.State = "drained"
			}
		}
		if l := load[n.ID]; l != nil {
			n.Drivers, n.Shards = l.GetDrivers(), l.GetShards()
		}
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(x, y node) int { return cmp.Compare(x.ID, y.ID) })
	if a.json {
		return a.emit(map[string]any{"epoch": rec.Doc.Epoch, "writer": writer, "written_at": rec.WrittenAt, "reason": rec.Reason, "nodes": nodes})
	}
	fmt.Fprintf(a.out, "ring epoch %d, writer %s; last written %s ago by %s (%s)\n", rec.Doc.Epoch, writer,
		time.Since(rec.WrittenAt).Round(time.Second), rec.Writer, rec.Reason)
	tw := a.table()
	fmt.Fprintln(tw, "NODE\tADDR\tHEALTH\tRING\tWEIGHT\tSHARDS\tDRIVERS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%d\t%d\n", n.ID, n.Addr, n.Health, n.State, n.Weight, n.Shards, n.Drivers)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if routerNote != "" {
		fmt.Fprintln(a.out, routerNote)
	}
	return nil
}

func (a *admin) ring(ctx context.Context) error {
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
	drained := map[string]bool{}
	for _, id := range d.Drained {
		drained[id] = true
	}
	tw := a.table()
	fmt.Fprintln(tw, "MEMBER\tADDR\tWEIGHT\tDRAINED")
	for _, mem := range m.Members() {
		fmt.Fprintf(tw, "%s\t%s\t%g\t%v\n", mem.ID, mem.Addr, mem.Weight, drained[mem.ID])
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

// listShards asks the router for every shard's load.
func (a *admin) listShards(ctx context.Context, node string, limit int32) (*geomatchv1.ListShardsResponse, error) {
	rc, done, err := a.routerAdmin()
	if err != nil {
		return nil, err
	}
	defer done()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := rc.ListShards(rctx, &geomatchv1.ListShardsRequest{NodeId: node, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("router at %s: %w", a.routerAddr, err)
	}
	return resp, nil
}

func (a *admin) shards(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shards", flag.ContinueOnError)
	node := fs.String("node", "", "only this node's shards")
	limit := fs.Int("limit", 50, "most shards shown")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	resp, err := a.listShards(ctx, *node, int32(*limit))
	if err != nil {
		return err
	}
	sh := resp.GetShards()
	slices.SortStableFunc(sh, func(x, y *geomatchv1.ShardInfo) int {
		return cmp.Or(cmp.Compare(y.GetDrivers(), x.GetDrivers()), cmp.Compare(y.GetQueriesPerS()+y.GetUpdatesPerS(), x.GetQueriesPerS()+x.GetUpdatesPerS()))
	})
	if a.json {
		return a.emit(resp)
	}
	fmt.Fprintf(a.out, "epoch %d, %d shards with drivers or load\n", resp.GetEpoch(), len(sh))
	tw := a.table()
	fmt.Fprintln(tw, "CELL\tRES\tOWNER\tDRIVERS\tUPDATES/S\tQUERIES/S")
	for _, s := range sh {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.1f\t%.1f\n", s.GetCell(), s.GetResolution(), s.GetOwner(), s.GetDrivers(), s.GetUpdatesPerS(), s.GetQueriesPerS())
	}
	return tw.Flush()
}

// parseCell parses an H3 cell in hex.
func parseCell(s string) (shardmap.Cell, error) {
	var c shardmap.Cell
	if err := c.UnmarshalText([]byte(s)); err != nil || !c.IsValid() {
		return 0, fmt.Errorf("cell %q: not an H3 cell index (hex, e.g. 872a1072bffffff)", s)
	}
	return c, nil
}

// change writes a settings change and waits for the ring that has it.
func (a *admin) change(ctx context.Context, what string, f func(s *membership.Settings, m *shardmap.Map) error) (*shardmap.Map, error) {
	_, before, err := a.currentRing(ctx)
	if err != nil {
		return nil, err
	}
	_, idx, err := membership.UpdateSettings(ctx, a.consul, a.cfg, func(s *membership.Settings) error { return f(s, before) })
	if err != nil {
		if strings.Contains(err.Error(), "consul") {
			return nil, a.consulErr(err)
		}
		return nil, err
	}
	deadline := time.Now().Add(a.timeout)
	for time.Now().Before(deadline) {
		rec, m, err := a.currentRing(ctx)
		if err == nil && rec.SettingsIndex >= idx {
			fmt.Fprintf(a.out, "%s: ring epoch %d -> %d\n", what, before.Epoch(), m.Epoch())
			return m, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s: settings written, but no ring writer applied them within %v (are matchers running?)", what, a.timeout)
}

func (a *admin) move(ctx context.Context, cellArg, node string) error {
	cell, err := parseCell(cellArg)
	if err != nil {
		return err
	}
	m, err := a.change(ctx, "move "+cellArg+" to "+node, func(s *membership.Settings, m *shardmap.Map) error {
		if !m.Layout().IsShard(cell) {
			return fmt.Errorf("%s is not a shard of the ring (resolution %d, %d splits): see `geomatch admin shards`", cellArg, m.Layout().Res(), len(m.Layout().Splits()))
		}
		if _, ok := m.Member(node); !ok {
			return fmt.Errorf("node %q is not a ring member", node)
		}
		if slices.Contains(s.Drained, node) {
			return fmt.Errorf("node %q is drained: undrain it first", node)
		}
		if s.Pins == nil {
			s.Pins = map[shardmap.Cell]string{}
		}
		s.Pins[cell] = node
		return nil
	})
	if err != nil {
		return err
	}
	o, _ := m.Owner(cell)
	fmt.Fprintf(a.out, "shard %s is owned by %s\n", cellArg, o.ID)
	return nil
}

func (a *admin) unpin(ctx context.Context, cellArg string) error {
	cell, err := parseCell(cellArg)
	if err != nil {
		return err
	}
	m, err := a.change(ctx, "unpin "+cellArg, func(s *membership.Settings, _ *shardmap.Map) error {
		if _, ok := s.Pins[cell]; !ok {
			return fmt.Errorf("%s is not pinned", cellArg)
		}
		delete(s.Pins, cell)
		return nil
	})
	if err != nil {
		return err
	}
	o, _ := m.Owner(cell)
	fmt.Fprintf(a.out, "shard %s is owned by %s\n", cellArg, o.ID)
	return nil
}

func (a *admin) drain(ctx context.Context, node string, drain bool) error {
	verb := map[bool]string{true: "drain", false: "undrain"}[drain]
	_, err := a.change(ctx, verb+" "+node, func(s *membership.Settings, m *shardmap.Map) error {
		has := slices.Contains(s.Drained, node)
		if drain {
			if _, ok := m.Member(node); !ok {
				return fmt.Errorf("node %q is not a ring member", node)
			}
			if has {
				return fmt.Errorf("node %q is already drained", node)
			}
			active := 0
			for _, mem := range m.Members() {
				if !slices.Contains(s.Drained, mem.ID) {
					active++
				}
			}
			if active <= 1 {
				return fmt.Errorf("node %q is the last active node: nothing could take its shards", node)
			}
			s.Drained = append(s.Drained, node)
			for c, id := range s.Pins { // its pins would keep shards on it
				if id == node {
					delete(s.Pins, c)
				}
			}
			return nil
		}
		if !has {
			return fmt.Errorf("node %q is not drained", node)
		}
		s.Drained = slices.DeleteFunc(s.Drained, func(id string) bool { return id == node })
		return nil
	})
	return err
}

func (a *admin) split(ctx context.Context, cellArg string, split bool) error {
	cell, err := parseCell(cellArg)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "split", false: "merge"}[split]
	m, err := a.change(ctx, verb+" "+cellArg, func(s *membership.Settings, m *shardmap.Map) error {
		if split {
			if !m.Layout().IsShard(cell) {
				return fmt.Errorf("%s is not a shard of the ring: see `geomatch admin shards`", cellArg)
			}
			if shardmap.Resolution(cell) >= m.Layout().FineRes() {
				return fmt.Errorf("%s is at resolution %d, the finest the ring allows (max split depth %d)", cellArg, shardmap.Resolution(cell), m.Layout().MaxSplitDepth())
			}
			s.Splits = append(s.Splits, cell)
			return nil
		}
		if !slices.Contains(s.Splits, cell) {
			return fmt.Errorf("%s is not split", cellArg)
		}
		r := shardmap.Resolution(cell)
		s.Splits = slices.DeleteFunc(s.Splits, func(c shardmap.Cell) bool {
			return c == cell || (shardmap.Resolution(c) > r && shardmap.Parent(c, r) == cell)
		})
		for c := range s.Pins { // pins of the merged children no longer name shards
			if shardmap.Resolution(c) > r && shardmap.Parent(c, r) == cell {
				delete(s.Pins, c)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if split {
		tw := a.table()
		fmt.Fprintln(tw, "CHILD\tOWNER")
		for _, ch := range cell.ImmediateChildren() {
			o, _ := m.Owner(ch)
			fmt.Fprintf(tw, "%s\t%s\n", ch, o.ID)
		}
		return tw.Flush()
	}
	return nil
}

// move is one planned shard move.
type plannedMove struct {
	Cell    string `json:"cell"`
	Drivers int64  `json:"drivers"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// planRebalance moves the shards of the most loaded node (by drivers) to
// the least loaded one, each time the move that helps most, until every
// node is within target of the average or no move helps. Pure.
func planRebalance(shards []*geomatchv1.ShardInfo, nodes []string, target float64, maxMoves int) ([]plannedMove, map[string]int64) {
	load := map[string]int64{}
	for _, n := range nodes {
		load[n] = 0
	}
	owner := map[string]string{}
	var total int64
	for _, s := range shards {
		if _, ok := load[s.GetOwner()]; !ok {
			continue
		}
		load[s.GetOwner()] += s.GetDrivers()
		owner[s.GetCell()] = s.GetOwner()
		total += s.GetDrivers()
	}
	if len(nodes) < 2 || total == 0 {
		return nil, load
	}
	avg := float64(total) / float64(len(nodes))
	var moves []plannedMove
	for len(moves) < maxMoves {
		hi, lo := nodes[0], nodes[0]
		for _, n := range nodes {
			if load[n] > load[hi] || (load[n] == load[hi] && n < hi) {
				hi = n
			}
			if load[n] < load[lo] || (load[n] == load[lo] && n < lo) {
				lo = n
			}
		}
		if float64(load[hi]) <= target*avg {
			break
		}
		// The shard of hi that best evens hi and lo: largest with
		// drivers <= (hi - lo) / 2 ... any that lowers the max.
		gap := load[hi] - load[lo]
		var best *geomatchv1.ShardInfo
		for _, s := range shards {
			if owner[s.GetCell()] != hi || s.GetDrivers() <= 0 || s.GetDrivers() >= gap {
				continue
			}
			if best == nil || abs(gap-2*s.GetDrivers()) < abs(gap-2*best.GetDrivers()) {
				best = s
			}
		}
		if best == nil {
			break
		}
		owner[best.GetCell()] = lo
		load[hi] -= best.GetDrivers()
		load[lo] += best.GetDrivers()
		moves = append(moves, plannedMove{Cell: best.GetCell(), Drivers: best.GetDrivers(), From: hi, To: lo})
	}
	return moves, load
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func maxOverAvg(load map[string]int64) float64 {
	var total, most int64
	for _, l := range load {
		total += l
		most = max(most, l)
	}
	if total == 0 {
		return 0
	}
	return float64(most) / (float64(total) / float64(len(load)))
}

func (a *admin) rebalance(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rebalance", flag.ContinueOnError)
	apply := fs.Bool("apply", false, "apply the plan (pin the moved shards); without it, only print it")
	fs.Bool("dry-run", true, "print the plan only (the default)")
	target := fs.Float64("target", shardmap.DefaultBalance, "aim: drivers of the busiest node at most this times the average")
	maxMoves := fs.Int("max-moves", 100, "most shards moved")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *target < 1 {
		return fmt.Errorf("--target %v: must be at least 1", *target)
	}
	_, m, err := a.currentRing(ctx)
	if err != nil {
		return err
	}
	resp, err := a.listShards(ctx, "", 0)
	if err != nil {
		return err
	}
	drained := map[string]bool{}
	for _, id := range m.Doc().Drained {
		drained[id] = true
	}
	var nodes []string
	for _, mem := range m.Members() {
		if !drained[mem.ID] {
			nodes = append(nodes, mem.ID)
		}
	}
	var total int64
	before := map[string]int64{}
	for _, n := range nodes {
		before[n] = 0
	}
	for _, s := range resp.GetShards() {
		if _, ok := before[s.GetOwner()]; ok {
			before[s.GetOwner()] += s.GetDrivers()
		}
		total += s.GetDrivers()
	}
	moves, after := planRebalance(resp.GetShards(), nodes, *target, *maxMoves)
	var moved int64
	for _, mv := range moves {
		moved += mv.Drivers
	}
	frac := 0.0
	if total > 0 {
		frac = float64(moved) / float64(total)
	}
	if a.json && !*apply {
		return a.emit(map[string]any{"moves": moves, "drivers_moved_fraction": frac, "max_over_avg_before": maxOverAvg(before), "max_over_avg_after": maxOverAvg(after)})
	}
	fmt.Fprintf(a.out, "drivers per node: max/avg %.3f now, %.3f after %d moves; %.1f%% of %d drivers would move\n",
		maxOverAvg(before), maxOverAvg(after), len(moves), 100*frac, total)
	tw := a.table()
	fmt.Fprintln(tw, "CELL\tDRIVERS\tFROM\tTO")
	for _, mv := range moves {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", mv.Cell, mv.Drivers, mv.From, mv.To)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !*apply {
		if len(moves) > 0 {
			fmt.Fprintln(a.out, "dry run: add --apply to pin these shards")
		}
		return nil
	}
	if len(moves) == 0 {
		fmt.Fprintln(a.out, "nothing to do")
		return nil
	}
	_, err = a.change(ctx, fmt.Sprintf("rebalance (%d moves)", len(moves)), func(s *membership.Settings, m *shardmap.Map) error {
		if s.Pins == nil {
			s.Pins = map[shardmap.Cell]string{}
		}
		for _, mv := range moves {
			c, err := parseCell(mv.Cell)
			if err != nil {
				return err
			}
			if !m.Layout().IsShard(c) {
				return fmt.Errorf("%s is no longer a shard: plan again", mv.Cell)
			}
			s.Pins[c] = mv.To
		}
		return nil
	})
	return err
}

// runAdminToken mints a token: `geomatch admin token --subject S --role R
// --ttl D` prints it on stdout, for operators, driver and rider back ends
// and tests.
func runAdminToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subject := fs.String("subject", "", "whom the token is for: a driver id (role driver), a rider id (role rider) or an operator (role admin)")
	role := fs.String("role", "", "driver, rider or admin")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	var af authFlags
	af.registerKeys(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: geomatch admin token --subject S --role R [--ttl D]\n\nMints a signed token for the public API and prints it on stdout. The key is\nthe routers': --auth-key-file or --auth-key, else GEOMATCH_AUTH_KEY_FILE or\nGEOMATCH_AUTH_KEY; the first key of a key file signs.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	if af.keyFile == "" && af.key == "" {
		af.keyFile, af.key = os.Getenv(envName("auth-key-file")), os.Getenv(envName("auth-key"))
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	keys, err := af.keys()
	if err != nil {
		return err
	}
	if keys == nil {
		return errors.New("no key: give --auth-key-file or GEOMATCH_AUTH_KEY (the routers' key)")
	}
	tok, err := keys.Issue(*subject, r, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
