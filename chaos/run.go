package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// RunConfig is one run of the harness.
type RunConfig struct {
	Scenario string
	Duration time.Duration
	Matchers int
	Routers  int
	Seed     uint64
	// Faults is the number of kills (kill scenario; 0: one per 10 s);
	// Partition how long a partition lasts (partition scenario).
	Faults    int
	Partition time.Duration
	Load      LoadConfig
	// Attach, when set, sends the load to these routers instead of
	// starting a cluster; no fault is injected then (the harness does not
	// own the processes).
	Attach []string
	// Binary, ConsulBinary and RedisBinary start the cluster; Dir holds
	// the processes' logs.
	Binary, ConsulBinary, RedisBinary string
	Dir                               string
	MatcherArgs                       []string
	// LogLevel is the matchers' and routers' log level (default warn).
	LogLevel string
	// History, when set, is a file the history is written to as JSON
	// lines; MaxOps bounds the history kept in memory.
	History string
	MaxOps  int
	Check   CheckConfig
	Logger  *slog.Logger
}

// InjectedFault is a fault as it happened.
type InjectedFault struct {
	Fault
	// Began and Undone are offsets from the start of the load.
	Began  time.Duration `json:"began"`
	Undone time.Duration `json:"undone"`
	Error  string        `json:"error,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Scenario    string        `json:"scenario"`
	Seed        uint64        `json:"seed"`
	Duration    time.Duration `json:"duration"`
	Matchers    int           `json:"matchers"`
	Routers     int           `json:"routers"`
	Attached    bool          `json:"attached"`
	UpdatesPerS float64       `json:"updates_per_s"`
	// BatchedUpdatesPerS is the part of UpdatesPerS that gateways sent in
	// UpdateLocations batches.
	BatchedUpdatesPerS float64         `json:"batched_updates_per_s,omitempty"`
	QueriesPerS        float64         `json:"queries_per_s"`
	RidesPerS          float64         `json:"rides_per_s"`
	Faults             []InjectedFault `json:"faults"`
	// Skipped counts operations the load could not start on time.
	Skipped Skipped `json:"skipped_ops"`
	Result  Result  `json:"result"`
	Verdict string  `json:"verdict"`
}

// Run starts the cluster (or attaches), drives the load, injects the
// scenario's faults, reads back and checks the history.
func Run(ctx context.Context, cfg RunConfig) (*Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	faults, err := Schedule(ScheduleConfig{Scenario: cfg.Scenario, Duration: cfg.Duration, Matchers: cfg.Matchers,
		Faults: cfg.Faults, Partition: cfg.Partition, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	rep := &Report{Scenario: cfg.Scenario, Seed: cfg.Seed, Duration: cfg.Duration, Matchers: cfg.Matchers, Routers: cfg.Routers, Attached: len(cfg.Attach) > 0}

	var cl *Cluster
	routers := cfg.Attach
	if len(routers) == 0 {
		log.Info("starting cluster", "matchers", cfg.Matchers, "routers", cfg.Routers, "logs", cfg.Dir)
		cl, err = StartCluster(ctx, ClusterConfig{Binary: cfg.Binary, ConsulBinary: cfg.ConsulBinary, RedisBinary: cfg.RedisBinary,
			Matchers: cfg.Matchers, Routers: cfg.Routers, Dir: cfg.Dir, MatcherArgs: cfg.MatcherArgs, LogLevel: cfg.LogLevel, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("start cluster: %w", err)
		}
		defer cl.Close()
		routers = cl.RouterAddrs()
		if err := waitRing(ctx, routers[0], cfg.Matchers, 60*time.Second); err != nil {
			return nil, err
		}
	}

	var hw *os.File
	if cfg.History != "" {
		if hw, err = os.Create(cfg.History); err != nil {
			return nil, fmt.Errorf("--history: %w", err)
		}
		defer hw.Close()
	}
	maxOps := cfg.MaxOps
	if maxOps <= 0 {
		maxOps = 5_000_000
	}
	var h *History
	if hw != nil {
		h = NewHistory(maxOps, hw)
	} else {
		h = NewHistory(maxOps, nil)
	}
	lc := cfg.Load
	lc.Routers, lc.Seed = routers, cfg.Seed
	load, err := NewLoad(lc, h)
	if err != nil {
		return nil, err
	}
	defer load.Close()
	log.Info("load started", "drivers", lc.Drivers, "updates_per_s", lc.UpdatesPerS, "batched_updates_per_s", lc.BatchedUpdatesPerS, "queries_per_s", lc.QueriesPerS, "rides_per_s", lc.RidesPerS)
	load.Start(ctx)

	for _, f := range faults {
		if !sleepUntil(ctx, h, f.At) {
			break
		}
		inj := InjectedFault{Fault: f, Began: h.Now()}
		if cl == nil {
			inj.Error = "not injected: attached to a cluster the harness does not run"
		} else {
			log.Info("fault", "kind", f.Kind, "node", f.Node, "for", f.For)
			inj.Error = errString(inject(ctx, cl, routers[0], f, h))
		}
		inj.Undone = h.Now()
		h.Add(Op{Kind: KindFault, Node: f.Node, Detail: string(f.Kind), Start: inj.Began, End: inj.Undone, Outcome: OK, Code: inj.Error})
		rep.Faults = append(rep.Faults, inj)
	}
	sleepUntil(ctx, h, cfg.Duration)
	loadTime := h.Now()
	load.StopTraffic()
	if ctx.Err() == nil {
		log.Info("load stopped; reading back")
		load.Readback(ctx, 2*time.Second)
	}
	load.Close()
	if err := h.Flush(); err != nil {
		return nil, err
	}
	ops, dropped := h.Ops()
	rep.Result = Check(ops, cfg.Check)
	rep.Result.Dropped = dropped
	rep.Skipped = load.Skipped()
	secs := loadTime.Seconds()
	rep.UpdatesPerS = float64(rep.Result.Stats.Updates) / secs
	rep.BatchedUpdatesPerS = float64(load.batchedSent.Load()) / secs
	rep.QueriesPerS = float64(rep.Result.Stats.Queries) / secs
	rep.RidesPerS = float64(rep.Result.Stats.Rides) / secs
	rep.Verdict = "PASS"
	if !rep.Result.OK() {
		rep.Verdict = "FAIL"
	}
	for _, f := range rep.Faults {
		if f.Error != "" && cl != nil {
			rep.Verdict = "FAIL"
		}
	}
	if ctx.Err() != nil {
		return rep, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return rep, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sleepUntil sleeps until the history's clock reads at; false when ctx
// ended first.
func sleepUntil(ctx context.Context, h *History, at time.Duration) bool {
	d := at - h.Now()
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// inject applies one fault and undoes it after f.For.
func inject(ctx context.Context, cl *Cluster, router string, f Fault, h *History) error {
	wait := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	var m *Process
	if f.Node != "" {
		var err error
		if m, err = cl.Matcher(f.Node); err != nil {
			return err
		}
	}
	switch f.Kind {
	case FaultKill, FaultTerm:
		sig := syscall.SIGKILL
		if f.Kind == FaultTerm {
			sig = syscall.SIGTERM
		}
		if err := m.Signal(sig); err != nil {
			return err
		}
		if !m.Wait(30 * time.Second) {
			_ = m.Signal(syscall.SIGKILL)
			m.Wait(5 * time.Second)
			return fmt.Errorf("%s did not exit within 30 s of %v", m.ID, sig)
		}
		wait(f.For)
		return cl.Restart(context.WithoutCancel(ctx), m)
	case FaultStop:
		if err := m.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		wait(f.For)
		return m.Signal(syscall.SIGCONT)
	case FaultDrain:
		return drain(ctx, router, f, wait)
	case FaultPartition:
		m.ConsulProxy.Cut(Blackhole)
		m.Inbound.Cut(Blackhole)
		wait(f.For)
		m.ConsulProxy.Heal()
		m.Inbound.Heal()
		return nil
	case FaultMinority:
		r := cl.Routers[len(cl.Routers)-1]
		m.ConsulProxy.Cut(Blackhole)
		r.ConsulProxy.Cut(Blackhole)
		wait(f.For)
		m.ConsulProxy.Heal()
		r.ConsulProxy.Heal()
		return nil
	case FaultConsulCut:
		ps := cl.ConsulProxies()
		for _, p := range ps {
			p.Cut(Blackhole)
		}
		wait(f.For)
		for _, p := range ps {
			p.Heal()
		}
		return nil
	case FaultRedisPause, FaultConsulPause:
		p := cl.Redis
		if f.Kind == FaultConsulPause {
			p = cl.Consul
		}
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		wait(f.For)
		return p.Signal(syscall.SIGCONT)
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
}

// drain drains a node through the admin API and undrains it after f.For.
func drain(ctx context.Context, router string, f Fault, wait func(time.Duration)) error {
	conn, err := grpc.NewClient(router, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", router, err)
	}
	defer conn.Close()
	admin := geomatchv1.NewAdminServiceClient(conn)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = admin.DrainNode(cctx, &geomatchv1.DrainNodeRequest{NodeId: f.Node})
	cancel()
	if err != nil {
		return fmt.Errorf("drain %s: %w", f.Node, err)
	}
	wait(f.For)
	cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if _, err := admin.UndrainNode(cctx, &geomatchv1.UndrainNodeRequest{NodeId: f.Node}); err != nil {
		return fmt.Errorf("undrain %s: %w", f.Node, err)
	}
	return nil
}

// waitRing waits until the router's ring has n active members.
func waitRing(ctx context.Context, router string, n int, d time.Duration) error {
	conn, err := grpc.NewClient(router, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", router, err)
	}
	defer conn.Close()
	admin := geomatchv1.NewAdminServiceClient(conn)
	deadline := time.Now().Add(d)
	last := errors.New("no answer")
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ring, err := admin.GetRing(cctx, &geomatchv1.GetRingRequest{})
		cancel()
		if err == nil {
			active := 0
			for _, m := range ring.GetMembers() {
				if !m.GetDrained() {
					active++
				}
			}
			if active == n {
				return nil
			}
			last = fmt.Errorf("%d of %d matchers on the ring (epoch %d)", active, n, ring.GetEpoch())
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("ring not ready within %v: %w", d, last)
}
