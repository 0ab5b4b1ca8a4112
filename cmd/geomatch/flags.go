package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/shardmap/autosplit"
)

// errUsage marks a command line that could not be parsed; the flag package
// has already printed why.
var errUsage = errors.New("usage")

// envName is the environment twin of a flag: shard-res → GEOMATCH_SHARD_RES.
func envName(flagName string) string {
	return "GEOMATCH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlags returns a flag set whose usage lists the environment twins.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: geomatch %s [flags]\n\n%s\n\nFlags (each also read from its environment twin):\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			typ, text := flag.UnquoteUsage(f)
			if typ != "" {
				typ = " " + typ
			}
			def := ""
			switch f.DefValue {
			case "", "0", "0s", "false":
				// A zero default says nothing; a usage text that gives
				// the effective default says it once.
			default:
				if !strings.Contains(text, "(default") {
					def = fmt.Sprintf(" (default %s)", f.DefValue)
				}
			}
			fmt.Fprintf(stderr, "  --%s%s  [%s]\n        %s%s\n", f.Name, typ, envName(f.Name), text, def)
		})
	}
	return fs
}

// parse parses args, then fills every flag not given on the command line
// from its environment twin.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return fillFromEnv(fs)
}

// fillFromEnv fills every flag of fs not given on the command line from
// its environment twin.
func fillFromEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// logFlags are the logging flags every server command has.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", l.format)
}

// ringFlags are the placement settings every process of a cluster must
// agree on.
type ringFlags struct {
	shardRes   int
	splitDepth int
	vnodes     int
}

func (r *ringFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&r.shardRes, "shard-res", shardmap.DefaultShardRes, "H3 resolution of shard cells (7: ~5 km² per shard)")
	fs.IntVar(&r.splitDepth, "max-split-depth", shardmap.DefaultMaxSplitDepth, "how many times a hot shard may be split into its 7 children")
	fs.IntVar(&r.vnodes, "vnodes", shardmap.DefaultVNodes, "virtual nodes per matcher on the consistent-hash ring")
}

func (r *ringFlags) doc(members []shardmap.Member) shardmap.Doc {
	d := shardmap.DefaultDoc(members)
	d.ShardRes, d.MaxSplitDepth, d.VNodes = r.shardRes, r.splitDepth, r.vnodes
	return d
}

// parsePeers parses "id=host:port,id=host:port".
func parsePeers(s string) ([]shardmap.Member, error) {
	var out []shardmap.Member
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=host:port", part)
		}
		out = append(out, shardmap.Member{ID: id, Addr: addr, Weight: 1})
	}
	if len(out) == 0 {
		return nil, errors.New("--peers: at least one matcher (id=host:port) is required")
	}
	return out, nil
}

// drainTimeout bounds graceful shutdown of a server's streams.
const drainTimeout = 5 * time.Second

// parseDuration parses a positive duration flag value.
func parseDuration(flagName, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration", flagName, v)
	}
	return d, nil
}

// autosplitFlags configure the autosplit controller wherever the ring
// writer runs (geomatch dev, geomatch matcher --consul).
type autosplitFlags struct {
	mode string
	cfg  autosplit.Config
}

// register adds the --autosplit flags; def is "on" or "off".
func (a *autosplitFlags) register(fs *flag.FlagSet, def string) {
	d := autosplit.DefaultConfig()
	a.cfg = d
	fs.StringVar(&a.mode, "autosplit", def, "split hot shards into their children and merge them back automatically: on or off (the kill switch)")
	fs.Float64Var(&a.cfg.SplitThreshold, "autosplit-threshold", d.SplitThreshold, "load per shard above which it is hot, in updates/s + query-weight × queries/s")
	fs.Float64Var(&a.cfg.QueryWeight, "autosplit-query-weight", d.QueryWeight, "weight of a nearby query in the load, in location updates (0: updates only; a search counts on every shard it covers, so splitting does not relieve it)")
	fs.DurationVar(&a.cfg.SplitWindow, "autosplit-split-window", d.SplitWindow, "how long a shard's load must stay above the threshold before it is split")
	fs.Float64Var(&a.cfg.MergeFraction, "autosplit-merge-fraction", d.MergeFraction, "children are merged back when their combined load stays under this fraction of the threshold")
	fs.DurationVar(&a.cfg.MergeWindow, "autosplit-merge-window", d.MergeWindow, "how long the children's combined load must stay under the merge level before they are merged")
	fs.DurationVar(&a.cfg.ShardCooldown, "autosplit-cooldown", d.ShardCooldown, "least time between two automatic changes of the same cell")
	fs.DurationVar(&a.cfg.ClusterInterval, "autosplit-interval", d.ClusterInterval, "least time between two automatic changes anywhere in the cluster")
	fs.IntVar(&a.cfg.MaxDepth, "autosplit-max-depth", d.MaxDepth, "how many levels below the shard resolution automatic splits go (0: the ring's --max-split-depth)")
}

// config returns the controller's configuration, nil when --autosplit=off.
func (a *autosplitFlags) config() (*autosplit.Config, error) {
	switch a.mode {
	case "on":
	case "off":
		return nil, nil
	default:
		return nil, fmt.Errorf("--autosplit: %q, want on or off", a.mode)
	}
	cfg := a.cfg
	cfg.Enabled = true
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("--autosplit-*: %w", err)
	}
	return &cfg, nil
}

// args are the flags again, for a child process (geomatch dev --consul
// passes them to the matchers it runs).
func (a *autosplitFlags) args() []string {
	c := a.cfg
	return []string{
		"--autosplit", a.mode,
		"--autosplit-threshold", strconv.FormatFloat(c.SplitThreshold, 'g', -1, 64),
		"--autosplit-query-weight", strconv.FormatFloat(c.QueryWeight, 'g', -1, 64),
		"--autosplit-split-window", c.SplitWindow.String(),
		"--autosplit-merge-fraction", strconv.FormatFloat(c.MergeFraction, 'g', -1, 64),
		"--autosplit-merge-window", c.MergeWindow.String(),
		"--autosplit-cooldown", c.ShardCooldown.String(),
		"--autosplit-interval", c.ClusterInterval.String(),
		"--autosplit-max-depth", strconv.Itoa(c.MaxDepth),
	}
}
