package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/geomatch/geomatch/loadgen"
)

// fenceFlags are `geomatch bench`'s fence workloads: --fences N runs the
// fence phases (loadgen.RunFences) instead of the plain run, and
// --fence-compare replays one trace against geomatch and, with
// --tile38-addr, Tile38, and compares their enter/exit events
// (loadgen.CompareFences).
type fenceFlags struct {
	fences      int
	putConc     int
	writeRate   float64
	writeConc   int
	noSubscribe bool

	compare       bool
	tile38Addr    string
	tile38PID     int
	tile38Circles string
	cmpDrivers    int
	cmpSteps      int
	cmpCircles    int
	cmpPolygons   int
	cmpHoleEvery  int
	cmpStepM      float64
}

func (f *fenceFlags) register(fs *flag.FlagSet) {
	d := loadgen.DefaultFenceConfig()
	c := loadgen.DefaultCompareConfig()
	fs.IntVar(&f.fences, "fences", 0, fmt.Sprintf("put this many fences (half polygons of 50-500 vertices, half circles) and measure ingest without and with them, PutFence/s alone and during ingest, and the event rate; 0: no fence phases; at most %d", loadgen.MaxFences))
	fs.IntVar(&f.putConc, "fence-put-concurrency", d.PutConcurrency, "PutFence workers of the fence-put phase")
	fs.Float64Var(&f.writeRate, "fence-write-rate", d.WriteRate, "PutFence/s the fence-writes phase aims at while ingest runs (0: as fast as it goes)")
	fs.IntVar(&f.writeConc, "fence-write-concurrency", d.WriteConcurrency, "PutFence workers of the fence-writes phase")
	fs.BoolVar(&f.noSubscribe, "fence-no-subscribe", false, "do not count the fence events with an EventService.Subscribe stream")
	fs.BoolVar(&f.compare, "fence-compare", false, "replay one deterministic trace against geomatch (and Tile38 with --tile38-addr) and compare their enter/exit events step by step, with a brute-force oracle")
	fs.StringVar(&f.tile38Addr, "tile38-addr", "", "--fence-compare: host:port of a Tile38 server on loopback (its collection "+loadgen.Tile38FenceKey+" and channels "+loadgen.Tile38ChannelPrefix+"* are replaced)")
	fs.IntVar(&f.tile38PID, "tile38-pid", 0, "--fence-compare: process id of the --tile38-addr server, to report its CPU")
	fs.StringVar(&f.tile38Circles, "tile38-circles", string(c.Tile38Circles), "--fence-compare: Tile38 command of circle fences: within (WITHIN ... CIRCLE lat lon m: exact haversine for points) or nearby (NEARBY ... POINT lat lon m: a 64-step polygon)")
	fs.IntVar(&f.cmpDrivers, "compare-drivers", c.Drivers, "--fence-compare: drivers of the trace")
	fs.IntVar(&f.cmpSteps, "compare-steps", c.Steps, "--fence-compare: steps of the trace (every driver moves at every step)")
	fs.IntVar(&f.cmpCircles, "compare-circles", c.Circles, "--fence-compare: circle fences")
	fs.IntVar(&f.cmpPolygons, "compare-polygons", c.Polygons, "--fence-compare: polygon fences")
	fs.IntVar(&f.cmpHoleEvery, "compare-hole-every", c.Shapes.HoleEvery, "--fence-compare: every Nth polygon has a hole (0: none)")
	fs.Float64Var(&f.cmpStepM, "compare-step-m", c.StepM, "--fence-compare: largest move of a step along each axis, meters")
}

// active reports whether a fence workload replaces the plain run.
func (f *fenceFlags) active() bool { return f.fences > 0 || f.compare }

// run runs the fence workload against t (a geomatch target) and writes the
// report to stdout and, when jsonOut is set, as JSON. finish ends the
// profiles before the report is written.
func (f *fenceFlags) run(ctx context.Context, cfg loadgen.Config, t loadgen.Target, stdout io.Writer, jsonOut string, finish func() error) error {
	gt, ok := t.(*loadgen.GRPCTarget)
	if !ok {
		return errors.New("--fences and --fence-compare: the target must be geomatch (--target or the embedded cluster), not --resp-target; Tile38 joins --fence-compare through --tile38-addr")
	}
	if f.fences > 0 && f.compare {
		return errors.New("--fences and --fence-compare: give one or the other")
	}
	type report interface {
		WriteTable(io.Writer) error
		WriteJSON(io.Writer) error
	}
	var rep report
	var runErr error
	if f.compare {
		cc := loadgen.DefaultCompareConfig()
		cc.Seed, cc.Batch, cc.Concurrency = cfg.Seed, cfg.Batch, cfg.IngestConcurrency
		cc.Drivers, cc.Steps, cc.Circles, cc.Polygons, cc.StepM = f.cmpDrivers, f.cmpSteps, f.cmpCircles, f.cmpPolygons, f.cmpStepM
		cc.Shapes.HoleEvery = f.cmpHoleEvery
		cc.Tile38Addr, cc.Tile38PID, cc.Tile38Circles = f.tile38Addr, f.tile38PID, loadgen.Tile38CircleMode(f.tile38Circles)
		cc.ServerPID = cfg.ServerPID
		if cc.Tile38PID != 0 {
			if err := loadgen.CheckProcess(cc.Tile38PID); err != nil {
				return err
			}
		}
		r, err := loadgen.CompareFences(ctx, cc, gt)
		rep, runErr = r, err
	} else {
		fc := loadgen.DefaultFenceConfig()
		fc.Fences, fc.PutConcurrency, fc.WriteRate, fc.WriteConcurrency = f.fences, f.putConc, f.writeRate, f.writeConc
		fc.Subscribe = !f.noSubscribe
		r, err := loadgen.RunFences(ctx, cfg, fc, gt)
		rep, runErr = r, err
	}
	if err := finish(); err != nil {
		return errors.Join(runErr, err)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if jsonOut != "" {
		fh, err := os.Create(jsonOut)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(fh); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return runErr
}
