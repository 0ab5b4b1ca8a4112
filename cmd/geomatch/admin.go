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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// adminCommands are the subcommands of `geomatch admin`.
var adminCommands = []struct{ name, args, summary string }{
	{"status", "", "nodes, their health and load, the ring epoch (and the ring writer, with --consul)"},
	{"ring", "", "the ring document: members, weights, drains, splits, pins"},
	{"shards", "[--node ID] [--limit N]", "shards with owner, drivers, update and query rates, busiest first"},
	{"move", "CELL NODE", "pin a shard to a node"},
	{"unpin", "CELL", "remove a shard's pin (it goes back to the ring)"},
	{"drain", "NODE", "move every shard off a node (it stays a member)"},
	{"undrain", "NODE", "give a drained node shards again"},
	{"split", "CELL", "split a shard into its 7 children (spreads a hot spot)"},
	{"merge", "CELL", "undo the split of CELL and of every cell below it"},
	{"rebalance", "[--apply] [--target R]", "plan shard moves (at most --max-moves N) that bring drivers per node within R of the average; --apply pins them"},
	{"token", "--subject S --role R [--ttl D]", "mint a signed token for the public API (key: --signing-key-file, or deprecated HS256 --auth-key-file); no cluster needed"},
	{"keygen", "--private-key-file F --public-keys-file F", "make an Ed25519 token signing key and add its public key to a key set (JWKS) for the routers; no cluster needed"},
	{"keys", "--public-keys-file F [--remove KID]", "list the keys of a key set, or remove one (the last step of a rotation); no cluster needed"},
}

// defaultTarget is the router geomatch dev and geomatch router listen on.
const defaultTarget = "127.0.0.1:50051"

func adminUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: geomatch admin [flags] COMMAND [args]

Shows and changes a cluster through a router's AdminService (--target), the
same on geomatch dev as on a Consul cluster. The router checks a change
against its ring, writes it to the ring settings (Consul KV, or the in-process
ring of geomatch dev) and answers once the ring that includes it is published,
at a new epoch, which this command prints.

With --consul, status and ring read Consul (and show the ring writer). With
--consul and no --target (nor GEOMATCH_TARGET), changes are written to Consul
KV directly, for a cluster with no router up; shards and rebalance still ask a
router for the load figures.

Commands:
`)
	for _, c := range adminCommands {
		fmt.Fprintf(w, "  %-9s %-31s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, `
Flags (before the command; each also read from its environment twin):
  --target ADDR   [GEOMATCH_TARGET] a router's public API (default %s); --router is an alias
  --consul ADDR   [GEOMATCH_CONSUL] Consul HTTP address: status and ring read it; without --target, changes are written to it
  --json          machine-readable output
  --timeout D     how long to wait for the router, Consul and a new ring epoch (default 10s)
  --tls-ca, --tls-cert, --tls-key, --token   TLS and the (admin) token for --target
  --consul-token, --consul-prefix, --consul-service, --consul-ca, --consul-cert, --consul-key as for the servers
`, defaultTarget)
}

// admin is one admin invocation's connections.
type admin struct {
	target    string
	targetSec clientFlags
	// consul is nil without --consul.
	consul *api.Client
	cfg    membership.ConsulConfig
	// direct: changes are written to Consul KV, not made by the router.
	direct  bool
	json    bool
	out     io.Writer
	timeout time.Duration
}

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { adminUsage(stderr) }
	var cf consulFlags
	var sec clientFlags
	cf.register(fs)
	sec.register(fs)
	var target string
	fs.StringVar(&target, "target", defaultTarget, "a router's public API address")
	fs.StringVar(&target, "router", defaultTarget, "alias of --target")
	asJSON := fs.Bool("json", false, "machine-readable output")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the router, Consul and a new ring epoch")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		adminUsage(stderr)
		return errUsage
	}
	switch rest[0] {
	case "token":
		return runAdminToken(rest[1:], stdout, stderr)
	case "keygen":
		return runAdminKeygen(rest[1:], stdout, stderr)
	case "keys":
		return runAdminKeys(rest[1:], stdout, stderr)
	}
	// The flags may also follow the command (`admin status --json`), but
	// for the commands with flags of their own (rebalance --target N).
	cargs := rest[1:]
	if rest[0] != "shards" && rest[0] != "rebalance" {
		var err error
		if cargs, err = parseInterleaved(fs, cargs); err != nil {
			return err
		}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["target"] || given["router"] { // neither twin overrides the command line
		_ = fs.Set("target", target)
		_ = fs.Set("router", target)
	}
	if err := fillFromEnv(fs); err != nil { // GEOMATCH_TARGET wins over GEOMATCH_ROUTER
		return err
	}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	a := &admin{target: target, targetSec: sec, cfg: cf.config(), json: *asJSON, out: stdout, timeout: *timeout}
	a.cfg.Timeout, a.cfg.ApplyTimeout = *timeout, *timeout
	if cf.addr != "" {
		client, err := membership.NewConsulClient(a.cfg)
		if err != nil {
			return err
		}
		a.consul = client
		a.direct = !given["target"] && !given["router"]
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+5*time.Second)
	defer cancel()
	cmd := rest[0]
	need := func(n int, what string) error {
		if len(cargs) != n {
			return fmt.Errorf("%s: want %s", cmd, what)
		}
		return nil
	}
	switch cmd {
	case "status":
		if a.consul != nil {
			return a.statusConsul(ctx)
		}
		return a.status(ctx)
	case "ring":
		if a.consul != nil {
			return a.ringConsul(ctx)
		}
		return a.ring(ctx)
	case "shards":
		return a.shards(ctx, cargs)
	case "move":
		if err := need(2, "CELL NODE"); err != nil {
			return err
		}
		return a.change(ctx, cmd, cargs)
	case "unpin", "split", "merge":
		if err := need(1, "CELL"); err != nil {
			return err
		}
		return a.change(ctx, cmd, cargs)
	case "drain", "undrain":
		if err := need(1, "NODE"); err != nil {
			return err
		}
		return a.change(ctx, cmd, cargs)
	case "rebalance":
		return a.rebalance(ctx, cargs)
	}
	fmt.Fprintf(stderr, "geomatch admin: unknown command %q\n\n", cmd)
	adminUsage(stderr)
	return errUsage
}

// routerAdmin dials the router's AdminService.
func (a *admin) routerAdmin() (geomatchv1.AdminServiceClient, func(), error) {
	opts, err := a.targetSec.dialOptions(a.target)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(a.target, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("router at %s: %w", a.target, err)
	}
	return geomatchv1.NewAdminServiceClient(conn), func() { conn.Close() }, nil
}

// routerErr says what the router answered to what.
func (a *admin) routerErr(what string, err error) error {
	st := status.Convert(err)
	if st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), "connection error") { // the dial failed
		return fmt.Errorf("%s: router at %s is unreachable (is a router running there? --target gives its address): %s", what, a.target, st.Message())
	}
	return fmt.Errorf("%s: %s (%v, router at %s)", what, st.Message(), st.Code(), a.target)
}

func (a *admin) emit(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *admin) table() *tabwriter.Writer { return tabwriter.NewWriter(a.out, 2, 4, 2, ' ', 0) }

// statusNode is one line of `admin status` (--json: the API's snake_case
// names).
type statusNode struct {
	ID      string  `json:"id"`
	Addr    string  `json:"addr"`
	Health  string  `json:"health"`
	State   string  `json:"state"`
	Weight  float64 `json:"weight"`
	Drivers int64   `json:"drivers"`
	Shards  int32   `json:"shards"`
}

func (a *admin) statusTable(nodes []statusNode) error {
	slices.SortFunc(nodes, func(x, y statusNode) int { return cmp.Compare(x.ID, y.ID) })
	tw := a.table()
	fmt.Fprintln(tw, "NODE\tADDR\tHEALTH\tRING\tWEIGHT\tSHARDS\tDRIVERS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%d\t%d\n", n.ID, n.Addr, n.Health, n.State, n.Weight, n.Shards, n.Drivers)
	}
	return tw.Flush()
}

// status shows the router's GetClusterStatus.
func (a *admin) status(ctx context.Context) error {
	rc, done, err := a.routerAdmin()
	if err != nil {
		return err
	}
	defer done()
	st, err := rc.GetClusterStatus(ctx, &geomatchv1.GetClusterStatusRequest{})
	if err != nil {
		return a.routerErr("status", err)
	}
	var nodes []statusNode
	var problems []string
	for _, n := range st.GetNodes() {
		sn := statusNode{ID: n.GetId(), Addr: n.GetAddr(), Health: "serving", State: "active", Weight: n.GetWeight(), Drivers: n.GetDrivers(), Shards: n.GetShards()}
		switch n.GetState() {
		case geomatchv1.NodeState_NODE_STATE_UNREACHABLE:
			sn.Health = "unreachable"
			problems = append(problems, fmt.Sprintf("%s: %s", n.GetId(), n.GetError()))
		case geomatchv1.NodeState_NODE_STATE_DRAINED:
			sn.State = "drained"
		}
		nodes = append(nodes, sn)
	}
	if a.json {
		return a.emit(map[string]any{"epoch": st.GetEpoch(), "membership": st.GetMembership(), "drivers": st.GetDrivers(), "nodes": nodes})
	}
	fmt.Fprintf(a.out, "ring epoch %d (%s membership, router %s); %d drivers\n", st.GetEpoch(), st.GetMembership(), a.target, st.GetDrivers())
	if err := a.statusTable(nodes); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(a.out, p)
	}
	return nil
}

// ring shows the router's GetRing.
func (a *admin) ring(ctx context.Context) error {
	rc, done, err := a.routerAdmin()
	if err != nil {
		return err
	}
	defer done()
	d, err := rc.GetRing(ctx, &geomatchv1.GetRingRequest{})
	if err != nil {
		return a.routerErr("ring", err)
	}
	if a.json {
		return a.emit(d)
	}
	fmt.Fprintf(a.out, "epoch %d (router %s)\nshard resolution %d, max split depth %d, %d vnodes\n",
		d.GetEpoch(), a.target, d.GetShardResolution(), d.GetMaxSplitDepth(), d.GetVnodes())
	tw := a.table()
	fmt.Fprintln(tw, "MEMBER\tADDR\tWEIGHT\tDRAINED")
	for _, mem := range d.GetMembers() {
		fmt.Fprintf(tw, "%s\t%s\t%g\t%v\n", mem.GetId(), mem.GetAddr(), mem.GetWeight(), mem.GetDrained())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	pins := d.GetPins()
	fmt.Fprintf(a.out, "splits: %d %v\npins: %d\n", len(d.GetSplits()), d.GetSplits(), len(pins))
	for _, c := range slices.Sorted(func(yield func(string) bool) {
		for c := range pins {
			if !yield(c) {
				return
			}
		}
	}) {
		fmt.Fprintf(a.out, "  %s -> %s\n", c, pins[c])
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
	resp, err := rc.ListShards(ctx, &geomatchv1.ListShardsRequest{NodeId: node, Limit: limit})
	if err != nil {
		return nil, a.routerErr("shards", err)
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

// change makes one ring change (move, unpin, drain, undrain, split,
// merge) through the router, or with a direct Consul write, and shows it.
func (a *admin) change(ctx context.Context, cmd string, args []string) error {
	var rc *geomatchv1.RingChange
	var err error
	if a.direct {
		rc, err = a.changeConsul(ctx, cmd, args)
	} else {
		rc, err = a.changeRouter(ctx, cmd, args)
	}
	if err != nil {
		return err
	}
	if a.json {
		return a.emit(rc)
	}
	fmt.Fprintf(a.out, "%s: ring epoch %d -> %d\n", rc.GetDescription(), rc.GetEpochBefore(), rc.GetEpoch())
	switch cmd {
	case "move", "unpin":
		for _, s := range rc.GetShards() {
			fmt.Fprintf(a.out, "shard %s is owned by %s\n", s.GetCell(), s.GetOwner())
		}
	case "split":
		tw := a.table()
		fmt.Fprintln(tw, "CHILD\tOWNER")
		for _, s := range rc.GetShards() {
			fmt.Fprintf(tw, "%s\t%s\n", s.GetCell(), s.GetOwner())
		}
		return tw.Flush()
	case "drain", "undrain":
		if len(rc.GetShards()) > 0 {
			tw := a.table()
			fmt.Fprintln(tw, "SHARD\tFROM\tTO")
			for _, s := range rc.GetShards() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.GetCell(), s.GetOwnerBefore(), s.GetOwner())
			}
			return tw.Flush()
		}
	}
	return nil
}

// changeRouter makes a ring change through the router's AdminService.
func (a *admin) changeRouter(ctx context.Context, cmd string, args []string) (*geomatchv1.RingChange, error) {
	c, done, err := a.routerAdmin()
	if err != nil {
		return nil, err
	}
	defer done()
	var rc *geomatchv1.RingChange
	switch cmd {
	case "move":
		rc, err = c.MoveShard(ctx, &geomatchv1.MoveShardRequest{Cell: args[0], NodeId: args[1]})
	case "unpin":
		rc, err = c.Unpin(ctx, &geomatchv1.UnpinRequest{Cell: args[0]})
	case "drain":
		rc, err = c.DrainNode(ctx, &geomatchv1.DrainNodeRequest{NodeId: args[0]})
	case "undrain":
		rc, err = c.UndrainNode(ctx, &geomatchv1.UndrainNodeRequest{NodeId: args[0]})
	case "split":
		rc, err = c.SplitShard(ctx, &geomatchv1.SplitShardRequest{Cell: args[0]})
	case "merge":
		rc, err = c.MergeShard(ctx, &geomatchv1.MergeShardRequest{Cell: args[0]})
	default:
		return nil, fmt.Errorf("%s: not a ring change", cmd)
	}
	if err != nil {
		return nil, a.routerErr(cmd+" "+strings.Join(args, " "), err)
	}
	return rc, nil
}

// plannedMove is one move of `admin rebalance --json`.
type plannedMove struct {
	Cell    string `json:"cell"`
	Drivers int64  `json:"drivers"`
	From    string `json:"from"`
	To      string `json:"to"`
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
	if !(*target >= 1) {
		return fmt.Errorf("--target %v: must be at least 1", *target)
	}
	if *maxMoves < 1 || *maxMoves > 10000 {
		return fmt.Errorf("--max-moves %d: must be within [1, 10000]", *maxMoves)
	}
	req := &geomatchv1.RebalanceRequest{Apply: *apply, Target: *target, MaxMoves: int32(*maxMoves)}
	var plan *geomatchv1.RebalancePlan
	var err error
	if a.direct {
		plan, err = a.rebalanceConsul(ctx, req)
	} else {
		var c geomatchv1.AdminServiceClient
		var done func()
		if c, done, err = a.routerAdmin(); err != nil {
			return err
		}
		defer done()
		if plan, err = c.Rebalance(ctx, req); err != nil {
			err = a.routerErr("rebalance", err)
		}
	}
	if err != nil {
		return err
	}
	moves := make([]plannedMove, 0, len(plan.GetMoves()))
	for _, mv := range plan.GetMoves() {
		moves = append(moves, plannedMove{Cell: mv.GetCell(), Drivers: mv.GetDrivers(), From: mv.GetFrom(), To: mv.GetTo()})
	}
	if a.json {
		return a.emit(map[string]any{"moves": moves, "drivers_moved_fraction": plan.GetDriversMovedFraction(), "drivers_total": plan.GetDriversTotal(),
			"max_over_avg_before": plan.GetMaxOverAvgBefore(), "max_over_avg_after": plan.GetMaxOverAvgAfter(),
			"applied": plan.GetApplied(), "epoch_before": plan.GetEpochBefore(), "epoch": plan.GetEpoch()})
	}
	fmt.Fprintf(a.out, "drivers per node: max/avg %.3f now, %.3f after %d moves; %.1f%% of %d drivers would move\n",
		plan.GetMaxOverAvgBefore(), plan.GetMaxOverAvgAfter(), len(moves), 100*plan.GetDriversMovedFraction(), plan.GetDriversTotal())
	tw := a.table()
	fmt.Fprintln(tw, "CELL\tDRIVERS\tFROM\tTO")
	for _, mv := range moves {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", mv.Cell, mv.Drivers, mv.From, mv.To)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case plan.GetApplied():
		fmt.Fprintf(a.out, "rebalance (%d moves): ring epoch %d -> %d\n", len(moves), plan.GetEpochBefore(), plan.GetEpoch())
	case *apply:
		fmt.Fprintln(a.out, "nothing to do")
	case len(moves) > 0:
		fmt.Fprintln(a.out, "dry run: add --apply to pin these shards")
	}
	return nil
}

// runAdminToken mints a token: `geomatch admin token --subject S --role R
// --ttl D` prints it on stdout, for operators, driver and rider back ends
// and tests. It signs with the Ed25519 key of --signing-key-file, or with
// the first HS256 key of --auth-key-file or --auth-key (deprecated).
func runAdminToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subject := fs.String("subject", "", "whom the token is for: a driver id (role driver), a rider id (role rider) or an operator (role admin)")
	role := fs.String("role", "", "driver, rider or admin")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	signingKey := fs.String("signing-key-file", "", "Ed25519 private key (PEM) to sign with, as geomatch admin keygen writes it; its kid is written in the token")
	var af authFlags
	af.registerKeys(fs)
	af.registerClaims(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: geomatch admin token --subject S --role R [--ttl D] --signing-key-file FILE\n\nMints a signed token for the public API and prints it on stdout. The key is\nthe Ed25519 private key of --signing-key-file (GEOMATCH_SIGNING_KEY_FILE),\nwhose public key the routers list in --auth-public-keys; or, deprecated, the\nrouters' HS256 key: --auth-key-file or --auth-key, else GEOMATCH_AUTH_KEY_FILE\nor GEOMATCH_AUTH_KEY (the first key of a key file signs).\n\nFlags:\n")
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
	if *signingKey == "" && af.keyFile == "" && af.key == "" {
		*signingKey = os.Getenv(envName("signing-key-file"))
		af.keyFile, af.key = os.Getenv(envName("auth-key-file")), os.Getenv(envName("auth-key"))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range []string{"auth-issuer", "auth-audience"} {
		if v, ok := os.LookupEnv(envName(name)); ok && !given[name] && v != "" {
			_ = fs.Set(name, v)
		}
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	keys, err := signingKeyring(*signingKey, &af)
	if err != nil {
		return err
	}
	tok, err := keys.Issue(*subject, r, *ttl, time.Now())
	auditMint(stderr, *subject, r, *ttl, err)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// signingKeyring returns the keyring that mints tokens: the Ed25519 key of
// the file signingKey, or the HS256 keys of af.
func signingKeyring(signingKey string, af *authFlags) (*auth.Keyring, error) {
	cfg := auth.Config{Issuer: af.issuer, Audience: af.audience}
	var err error
	if cfg.Secrets, err = af.secrets(); err != nil {
		return nil, err
	}
	if signingKey != "" {
		if len(cfg.Secrets) > 0 {
			return nil, errors.New("--signing-key-file and --auth-key-file/--auth-key: give one key to sign with")
		}
		if cfg.SigningKey, err = readSigningKey(signingKey); err != nil {
			return nil, fmt.Errorf("--signing-key-file: %w", err)
		}
	}
	if cfg.SigningKey == nil && len(cfg.Secrets) == 0 {
		return nil, errors.New("no key: give --signing-key-file or GEOMATCH_SIGNING_KEY_FILE (an Ed25519 key of geomatch admin keygen), or, deprecated, --auth-key-file or GEOMATCH_AUTH_KEY (the routers' HS256 key)")
	}
	k, err := auth.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return k, nil
}
