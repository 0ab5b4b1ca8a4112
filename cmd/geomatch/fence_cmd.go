package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// This file holds `geomatch fence` and the machinery it shares with
// `geomatch events` and `geomatch hook`: a command group of the public API
// whose subcommands take flags before or after their arguments, dial a
// router like `geomatch admin` does, and print protojson with --json.

// apiGroup is a command of the public API made of subcommands (geomatch
// fence, events, hook).
type apiGroup struct {
	name string
	// about is the paragraph under the usage line.
	about string
	// unary: the subcommands make unary calls, so they take --json and
	// --timeout.
	unary    bool
	commands []apiCommand
}

// apiCommand is one subcommand of an apiGroup.
type apiCommand struct {
	name, args, summary string
	// setup registers the subcommand's own flags on fs and returns the
	// function that runs it with the positional arguments once they are
	// parsed.
	setup func(fs *flag.FlagSet) apiRun
}

// apiRun runs one parsed subcommand.
type apiRun func(ctx context.Context, c *apiClient, args []string) error

// apiFlags are the flags every subcommand of an apiGroup takes.
type apiFlags struct {
	target  string
	sec     clientFlags
	json    bool
	timeout time.Duration
}

func (a *apiFlags) register(fs *flag.FlagSet, unary bool) {
	fs.StringVar(&a.target, "target", defaultTarget, "a router's public API address, `HOST:PORT`")
	a.sec.register(fs)
	if unary {
		fs.BoolVar(&a.json, "json", false, "machine-readable output (protojson)")
		fs.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long to wait for the router's answer")
	}
}

// isAPIFlag reports whether name is one of apiFlags, which the usage text
// lists once per group rather than under every subcommand.
func isAPIFlag(name string) bool {
	switch name {
	case "target", "tls-ca", "tls-cert", "tls-key", "token", "json", "timeout":
		return true
	}
	return false
}

// usageError is a command line a subcommand refuses after parsing (a
// missing argument, flags that exclude each other); it is an errUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func badUsage(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

func (g *apiGroup) lookup(name string) *apiCommand {
	for i := range g.commands {
		if g.commands[i].name == name {
			return &g.commands[i]
		}
	}
	return nil
}

// run parses `geomatch GROUP [flags] COMMAND [args and flags]` and runs the
// command.
func (g *apiGroup) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var ignored apiFlags
	top := flag.NewFlagSet("geomatch "+g.name, flag.ContinueOnError)
	top.SetOutput(stderr)
	top.Usage = func() {} // the flag package prints why; the usage is below
	ignored.register(top, g.unary)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			g.usage(stdout)
			return err
		}
		fmt.Fprintf(stderr, "Run 'geomatch %s --help' for usage.\n", g.name)
		return errUsage
	}
	rest := top.Args()
	if len(rest) == 0 {
		g.usage(stderr)
		return errUsage
	}
	if rest[0] == "help" {
		g.usage(stdout)
		return flag.ErrHelp
	}
	cmd := g.lookup(rest[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "geomatch %s: unknown command %q\n\n", g.name, rest[0])
		g.usage(stderr)
		return errUsage
	}
	// The flags before the command are parsed again with the command's
	// own, so that one flag set knows every flag given (and the
	// environment fills only the others).
	before := args[:len(args)-len(rest)]
	fs := flag.NewFlagSet("geomatch "+g.name+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &apiClient{out: stdout, errOut: stderr, stdin: os.Stdin}
	c.register(fs, g.unary)
	runSub := cmd.setup(fs)
	fs.Usage = func() {}
	pos, err := parseInterleaved(fs, append(slices.Clone(before), rest[1:]...))
	switch {
	case errors.Is(err, flag.ErrHelp):
		g.commandUsage(stdout, cmd)
		return err
	case err != nil:
		g.shortUsage(stderr, cmd)
		return err
	}
	if err := fillFromEnv(fs); err != nil {
		return err
	}
	defer c.close()
	err = runSub(ctx, c, pos)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "geomatch %s %s: %s\n", g.name, cmd.name, ue.msg)
		g.shortUsage(stderr, cmd)
		return errUsage
	}
	return err
}

// parseInterleaved parses flags and positional arguments in any order
// ("put ID --set S" and "put --set S ID"); everything after "--" is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// shortUsage is the reminder printed under a refused command line.
func (g *apiGroup) shortUsage(w io.Writer, c *apiCommand) {
	fmt.Fprintf(w, "Usage: geomatch %s %s %s\nRun 'geomatch %s %s --help' for its flags.\n", g.name, c.name, c.args, g.name, c.name)
}

// usage lists the group's commands, their flags and the shared flags.
func (g *apiGroup) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: geomatch %s COMMAND [args] [flags]\n\n%s\n\nCommands:\n", g.name, g.about)
	for i := range g.commands {
		c := &g.commands[i]
		fmt.Fprintf(w, "\n  %s %s\n      %s\n", c.name, c.args, c.summary)
		printFlags(w, c.flagSet(), "      ", func(name string) bool { return !isAPIFlag(name) })
	}
	g.sharedUsage(w)
}

// commandUsage explains one command.
func (g *apiGroup) commandUsage(w io.Writer, c *apiCommand) {
	fmt.Fprintf(w, "Usage: geomatch %s %s %s\n\n%s.\n\n%s\n", g.name, c.name, c.args, c.summary, g.about)
	fs := c.flagSet()
	own := 0
	fs.VisitAll(func(f *flag.Flag) {
		if !isAPIFlag(f.Name) {
			own++
		}
	})
	if own > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, fs, "  ", func(name string) bool { return !isAPIFlag(name) })
	}
	g.sharedUsage(w)
}

func (g *apiGroup) sharedUsage(w io.Writer) {
	var shared apiFlags
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	shared.register(fs, g.unary)
	fmt.Fprintf(w, "\nFlags of every command (before or after it):\n")
	printFlags(w, fs, "  ", func(string) bool { return true })
	fmt.Fprintf(w, "\nEvery flag also reads its environment twin when not given: --target is\nGEOMATCH_TARGET, --token GEOMATCH_TOKEN.\n")
}

// flagSet is a throwaway flag set of the command, for its usage text.
func (c *apiCommand) flagSet() *flag.FlagSet {
	var shared apiFlags
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	shared.register(fs, true)
	c.setup(fs)
	return fs
}

// printFlags prints the flags of fs that keep accepts, each with the type
// of its value and its default.
func printFlags(w io.Writer, fs *flag.FlagSet, indent string, keep func(string) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		typ, text := flag.UnquoteUsage(f)
		if typ != "" {
			typ = " " + typ
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s--%s%s\n%s    %s%s\n", indent, f.Name, typ, indent, text, def)
	})
}

// apiClient is one invocation's connection to a router and its output.
type apiClient struct {
	apiFlags
	out, errOut io.Writer
	// stdin is read by --geojson -.
	stdin io.Reader
	conn  *grpc.ClientConn
}

// dial connects to the router (lazily: gRPC connects on the first call).
func (c *apiClient) dial() (*grpc.ClientConn, error) {
	if c.conn != nil {
		return c.conn, nil
	}
	opts, err := c.sec.dialOptions(c.target)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(c.target, opts...)
	if err != nil {
		return nil, fmt.Errorf("router at %s: %w", c.target, err)
	}
	c.conn = conn
	return conn, nil
}

func (c *apiClient) close() {
	if c.conn != nil {
		c.conn.Close()
	}
}

// call bounds a unary call by --timeout.
func (c *apiClient) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// routerErr says what the router answered to what, as geomatch admin does
// (an INVALID_ARGUMENT's message is the server's, verbatim).
func (c *apiClient) routerErr(what string, err error) error {
	return (&admin{target: c.target}).routerErr(what, err)
}

// emit prints m as indented protojson, zero fields included.
func (c *apiClient) emit(m proto.Message) error {
	b, err := protoJSON(m, true)
	if err != nil {
		return err
	}
	_, err = c.out.Write(append(b, '\n'))
	return err
}

func (c *apiClient) table() *tabwriter.Writer { return tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0) }

// protoJSON encodes m as protojson: indented with every field, or on one
// line without zero fields. protojson's own spacing varies on purpose
// from build to build, so the text is normalised.
func protoJSON(m proto.Message, indent bool) ([]byte, error) {
	b, err := protojson.MarshalOptions{EmitUnpopulated: indent}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if indent {
		err = json.Indent(&buf, b, "", "  ")
	} else {
		err = json.Compact(&buf, b)
	}
	return buf.Bytes(), err
}

// needID checks that args is exactly one id.
func needID(args []string, what string) (string, error) {
	switch {
	case len(args) == 0:
		return "", badUsage("missing %s", what)
	case len(args) > 1:
		return "", badUsage("unexpected arguments after %s: %s", what, strings.Join(args[1:], " "))
	case args[0] == "":
		return "", badUsage("%s is empty", what)
	}
	return args[0], nil
}

// listFlag is a repeatable flag of strings; one value may also list
// several, comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			return fmt.Errorf("%q has an empty item", s)
		}
		*l = append(*l, v)
	}
	return nil
}

// pairsFlag is a repeatable k=v flag (labels, headers).
type pairsFlag map[string]string

func (p *pairsFlag) String() string {
	if p == nil || *p == nil {
		return ""
	}
	return formatPairs(*p, ",")
}

func (p *pairsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	if *p == nil {
		*p = map[string]string{}
	}
	if _, dup := (*p)[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	(*p)[k] = v
	return nil
}

// formatPairs prints a map as sorted k=v pairs.
func formatPairs[V any](m map[string]V, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, sep)
}

// parseNumbers parses the comma-separated finite numbers of a flag whose
// form is format (e.g. "LAT,LNG"; example is shown in the error).
func parseNumbers(s, format, example string) ([]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) != strings.Count(format, ",")+1 {
		return nil, fmt.Errorf("%q is not %s (e.g. %s)", s, format, example)
	}
	v := make([]float64, len(parts))
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%q is not %s: %q is not a number", s, format, p)
		}
		v[i] = x
	}
	return v, nil
}

// circleFlag is --circle LAT,LNG,RADIUS_M.
type circleFlag struct{ c *geomatchv1.Circle }

func (f *circleFlag) String() string {
	if f == nil || f.c == nil {
		return ""
	}
	return fmt.Sprintf("%g,%g,%g", f.c.GetCenter().GetLat(), f.c.GetCenter().GetLng(), f.c.GetRadiusM())
}

func (f *circleFlag) Set(s string) error {
	v, err := parseNumbers(s, "LAT,LNG,RADIUS_M", "40.758,-73.985,500")
	if err != nil {
		return err
	}
	switch {
	case v[0] < -90 || v[0] > 90:
		return fmt.Errorf("%q: latitude %g is outside [-90, 90] (the order is LAT,LNG,RADIUS_M)", s, v[0])
	case v[1] < -180 || v[1] > 180:
		return fmt.Errorf("%q: longitude %g is outside [-180, 180]", s, v[1])
	case v[2] <= 0:
		return fmt.Errorf("%q: the radius %g m must be positive", s, v[2])
	}
	f.c = &geomatchv1.Circle{Center: &geomatchv1.LatLng{Lat: v[0], Lng: v[1]}, RadiusM: v[2]}
	return nil
}

// detectNames are the values of --detect.
var detectNames = map[string]geomatchv1.FenceDetect{
	"enter":  geomatchv1.FenceDetect_FENCE_DETECT_ENTER,
	"exit":   geomatchv1.FenceDetect_FENCE_DETECT_EXIT,
	"inside": geomatchv1.FenceDetect_FENCE_DETECT_INSIDE,
	"cross":  geomatchv1.FenceDetect_FENCE_DETECT_CROSS,
}

// detectFlag is --detect enter,exit,inside,cross (repeatable).
type detectFlag []geomatchv1.FenceDetect

func (d *detectFlag) String() string {
	if d == nil {
		return ""
	}
	return detectString(*d)
}

func (d *detectFlag) Set(s string) error {
	for _, name := range strings.Split(s, ",") {
		v, ok := detectNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return fmt.Errorf("unknown detect %q: want enter, exit, inside or cross (comma-separated)", name)
		}
		if !slices.Contains(*d, v) {
			*d = append(*d, v)
		}
	}
	return nil
}

func detectString(ds []geomatchv1.FenceDetect) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = strings.ToLower(strings.TrimPrefix(d.String(), "FENCE_DETECT_"))
	}
	return strings.Join(names, ",")
}

// fenceGroup is `geomatch fence`.
var fenceGroup = &apiGroup{
	name: "fence",
	about: `Keeps geofences through a router's FenceService (--target): named areas
whose drivers the service watches. A fence belongs to a set (default
"default"); its events reach 'geomatch events tail' and hooks
('geomatch hook'), which select them by set or fence.`,
	unary: true,
	commands: []apiCommand{
		{"put", "ID (--geojson FILE|- | --circle LAT,LNG,RADIUS_M) [flags]", "create a fence or replace the one with this ID, and print it; returns once every matcher applies it", fencePut},
		{"get", "ID", "print a fence", fenceGet},
		{"delete", "ID", "delete a fence (drivers inside it get no exit events)", fenceDelete},
		{"list", "[--set S] [--page-size N] [--all]", "list fences by ID, one page (or --all of them)", fenceList},
		{"counts", "(--set S | ID...)", "count the live drivers inside fences now: inside, available, by vehicle class", fenceCounts},
	},
}

func runFence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fenceGroup.run(ctx, args, stdout, stderr)
}

func (c *apiClient) fences() (geomatchv1.FenceServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return geomatchv1.NewFenceServiceClient(conn), nil
}

func fencePut(fs *flag.FlagSet) apiRun {
	set := fs.String("set", "", "the set `S` the fence belongs to (server default: \"default\")")
	geojson := fs.String("geojson", "", "a GeoJSON Polygon or MultiPolygon, or a Feature of one, read from `FILE` (- for stdin)")
	var circle circleFlag
	fs.Var(&circle, "circle", "a disc: its center's latitude and longitude and its radius in meters, `LAT,LNG,RADIUS_M`")
	var detect detectFlag
	fs.Var(&detect, "detect", "the events the fence reports, any of `enter,exit,inside,cross` (repeatable; default enter,exit)")
	class := fs.String("vehicle-class", "", "watch only drivers of the vehicle class `CLASS`")
	var labels pairsFlag
	fs.Var(&labels, "label", "a label `KEY=VALUE` copied into the fence's events (repeatable)")
	return func(ctx context.Context, c *apiClient, args []string) error {
		id, err := needID(args, "ID (the fence's id: letters, digits and -_.:/@)")
		if err != nil {
			return err
		}
		f := &geomatchv1.Fence{FenceId: id, Set: *set, Detect: detect, VehicleClass: *class, Labels: labels}
		switch {
		case *geojson != "" && circle.c != nil:
			return badUsage("--geojson and --circle: give one shape")
		case circle.c != nil:
			f.Shape = &geomatchv1.Fence_Circle{Circle: circle.c}
		case *geojson != "":
			text, err := readGeoJSON(*geojson, c.stdin)
			if err != nil {
				return err
			}
			f.Shape = &geomatchv1.Fence_Geojson{Geojson: text}
		default:
			return badUsage("missing the shape: --geojson FILE (- for stdin) or --circle LAT,LNG,RADIUS_M")
		}
		fc, err := c.fences()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		out, err := fc.PutFence(ctx, &geomatchv1.PutFenceRequest{Fence: f})
		if err != nil {
			return c.routerErr("put fence "+id, err)
		}
		if c.json {
			return c.emit(out)
		}
		_, err = fmt.Fprintf(c.out, "put %s\n", fenceSummary(out))
		return err
	}
}

// readGeoJSON reads --geojson's file (or stdin for -). The text goes to
// the server as it is: the server validates it and says what is wrong.
func readGeoJSON(path string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("--geojson: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "", fmt.Errorf("--geojson %s: empty; want a GeoJSON Polygon, MultiPolygon or a Feature of one", path)
	}
	return string(b), nil
}

// fenceSummary is a fence on one line.
func fenceSummary(f *geomatchv1.Fence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fence %s (set %s): %s", f.GetFenceId(), cmp.Or(f.GetSet(), "default"), shapeSummary(f))
	if ds := f.GetDetect(); len(ds) > 0 {
		fmt.Fprintf(&b, "; detects %s", detectString(ds))
	} else {
		b.WriteString("; detects enter,exit")
	}
	if vc := f.GetVehicleClass(); vc != "" {
		fmt.Fprintf(&b, "; vehicle class %s", vc)
	}
	if l := f.GetLabels(); len(l) > 0 {
		fmt.Fprintf(&b, "; labels %s", formatPairs(l, ","))
	}
	if ms := f.GetUpdatedAtMs(); ms > 0 {
		fmt.Fprintf(&b, "; updated %s", time.UnixMilli(ms).UTC().Format(time.RFC3339))
	}
	return b.String()
}

// shapeSummary describes a fence's shape briefly.
func shapeSummary(f *geomatchv1.Fence) string {
	switch s := f.GetShape().(type) {
	case *geomatchv1.Fence_Circle:
		c := s.Circle
		return fmt.Sprintf("circle %.6f,%.6f r=%gm", c.GetCenter().GetLat(), c.GetCenter().GetLng(), c.GetRadiusM())
	case *geomatchv1.Fence_Geojson:
		var g struct {
			Type        string
			Coordinates any
			Geometry    *struct {
				Type        string
				Coordinates any
			}
		}
		if json.Unmarshal([]byte(s.Geojson), &g) != nil {
			return fmt.Sprintf("geojson (%d bytes)", len(s.Geojson))
		}
		if g.Geometry != nil {
			g.Type, g.Coordinates = g.Geometry.Type, g.Geometry.Coordinates
		}
		return fmt.Sprintf("%s of %d points", g.Type, countPoints(g.Coordinates))
	}
	return "no shape"
}

// countPoints counts the positions in GeoJSON coordinates.
func countPoints(v any) int {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return 0
	}
	if _, ok := a[0].(float64); ok {
		return 1
	}
	n := 0
	for _, x := range a {
		n += countPoints(x)
	}
	return n
}

func fenceGet(*flag.FlagSet) apiRun {
	return func(ctx context.Context, c *apiClient, args []string) error {
		id, err := needID(args, "ID")
		if err != nil {
			return err
		}
		fc, err := c.fences()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		f, err := fc.GetFence(ctx, &geomatchv1.GetFenceRequest{FenceId: id})
		if err != nil {
			return c.routerErr("get fence "+id, err)
		}
		if c.json {
			return c.emit(f)
		}
		_, err = fmt.Fprintln(c.out, fenceSummary(f))
		return err
	}
}

func fenceDelete(*flag.FlagSet) apiRun {
	return func(ctx context.Context, c *apiClient, args []string) error {
		id, err := needID(args, "ID")
		if err != nil {
			return err
		}
		fc, err := c.fences()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		resp, err := fc.DeleteFence(ctx, &geomatchv1.DeleteFenceRequest{FenceId: id})
		if err != nil {
			return c.routerErr("delete fence "+id, err)
		}
		if c.json {
			return c.emit(resp)
		}
		_, err = fmt.Fprintf(c.out, "deleted fence %s\n", id)
		return err
	}
}

func fenceList(fs *flag.FlagSet) apiRun {
	set := fs.String("set", "", "only the fences of set `S` (default every set)")
	pageSize := fs.Int("page-size", 0, "`N` fences per page, 1..1000 (default the server's, 100)")
	pageToken := fs.String("page-token", "", "start at `TOKEN`, a previous page's next_page_token")
	all := fs.Bool("all", false, "follow next_page_token to the last page")
	return func(ctx context.Context, c *apiClient, args []string) error {
		if len(args) > 0 {
			return badUsage("unexpected arguments: %s", strings.Join(args, " "))
		}
		if *pageSize < 0 || *pageSize > 1000 {
			return badUsage("--page-size %d: want 1..1000", *pageSize)
		}
		fc, err := c.fences()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		req := &geomatchv1.ListFencesRequest{Set: *set, PageSize: int32(*pageSize), PageToken: *pageToken}
		var list geomatchv1.ListFencesResponse
		for {
			resp, err := fc.ListFences(ctx, req)
			if err != nil {
				return c.routerErr("list fences", err)
			}
			list.Fences = append(list.Fences, resp.GetFences()...)
			list.NextPageToken = resp.GetNextPageToken()
			if !*all || list.NextPageToken == "" {
				break
			}
			if list.NextPageToken == req.PageToken {
				return fmt.Errorf("list fences: the router at %s returned the same page token twice (%q)", c.target, req.PageToken)
			}
			req.PageToken = list.NextPageToken
		}
		if c.json {
			return c.emit(&list)
		}
		tw := c.table()
		fmt.Fprintln(tw, "FENCE\tSET\tSHAPE\tDETECT\tCLASS\tLABELS\tUPDATED")
		for _, f := range list.Fences {
			detect := cmp.Or(detectString(f.GetDetect()), "enter,exit")
			updated := "-"
			if ms := f.GetUpdatedAtMs(); ms > 0 {
				updated = time.UnixMilli(ms).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.GetFenceId(), cmp.Or(f.GetSet(), "default"), shapeSummary(f), detect,
				cmp.Or(f.GetVehicleClass(), "-"), cmp.Or(formatPairs(f.GetLabels(), ","), "-"), updated)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if list.NextPageToken != "" {
			fmt.Fprintf(c.out, "more fences: --page-token %s (or --all)\n", list.NextPageToken)
		}
		return nil
	}
}

func fenceCounts(fs *flag.FlagSet) apiRun {
	set := fs.String("set", "", "count every fence of set `S`")
	return func(ctx context.Context, c *apiClient, args []string) error {
		switch {
		case *set == "" && len(args) == 0:
			return badUsage("say which fences: --set S, or fence IDs")
		case *set != "" && len(args) > 0:
			return badUsage("--set and fence IDs: give one")
		case len(args) > 1000:
			return badUsage("%d fence IDs: at most 1000 a call", len(args))
		}
		fc, err := c.fences()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		resp, err := fc.GetFenceCounts(ctx, &geomatchv1.GetFenceCountsRequest{Set: *set, FenceIds: args})
		if err != nil {
			return c.routerErr("fence counts", err)
		}
		if c.json {
			return c.emit(resp)
		}
		tw := c.table()
		fmt.Fprintln(tw, "FENCE\tINSIDE\tAVAILABLE\tBY CLASS")
		for _, n := range resp.GetCounts() {
			byClass := map[string]int64{}
			for k, v := range n.GetByVehicleClass() {
				byClass[cmp.Or(k, "(none)")] += v
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", n.GetFenceId(), n.GetInside(), n.GetAvailable(), cmp.Or(formatPairs(byClass, " "), "-"))
		}
		return tw.Flush()
	}
}
