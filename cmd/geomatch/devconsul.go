package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/lifecycle"
)

// devArgs are the flags `geomatch dev --consul` passes on to the matchers
// and the router it runs: the shared cluster settings.
type devArgs struct {
	consul consulFlags
	log    logFlags
	ring   ringFlags
	store  storeFlags
	disp   dispatchFlags
	// metrics is the router's --metrics address ("" for none).
	metrics string
	// sec is the TLS and token setup; limits the router's client limits.
	sec    *devSecurity
	limits limitFlags
	// autosplit are the matchers' --autosplit flags.
	autosplit []string
}

func (d devArgs) shared() []string {
	a := []string{
		"--consul", d.consul.addr, "--consul-prefix", d.consul.prefix, "--consul-service", d.consul.service,
		"--log-level", d.log.level, "--log-format", d.log.format,
		"--shard-res", strconv.Itoa(d.ring.shardRes), "--max-split-depth", strconv.Itoa(d.ring.splitDepth), "--vnodes", strconv.Itoa(d.ring.vnodes),
	}
	if d.consul.token != "" {
		a = append(a, "--consul-token", d.consul.token)
	}
	a = append(a, d.consul.tlsArgs()...)
	a = append(a, d.store.args()...)
	return a
}

// tls are the TLS flags of the child of role named id (see
// devSecurity.childArgs); none without security (tests).
func (d devArgs) tls(role identity.Role, id string) ([]string, error) {
	if d.sec == nil {
		return []string{"--insecure-internal"}, nil
	}
	return d.sec.childArgs(role, id)
}

// router are the flags only the router takes: authentication and limits.
func (d devArgs) router() []string {
	a := []string{"--auth", "off"}
	if d.sec != nil && d.sec.keys != nil {
		a = d.sec.authArgs
	}
	return append(a, d.limits.args()...)
}

func (d devArgs) dispatch() []string {
	return []string{"--match-mode", d.disp.mode, "--batch-window", d.disp.batchWindow, "--offer-timeout", d.disp.offer,
		"--max-offers", strconv.Itoa(d.disp.maxOffers), "--pickup-radius", strconv.FormatFloat(d.disp.radius, 'g', -1, 64)}
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("router at %s not listening: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runDevConsul runs `geomatch dev` with its membership in Consul: the
// matchers and the router are the same code as `geomatch matcher --consul`
// and `geomatch router --consul`, run in this process on loopback ports,
// so the ring writer election, registration and handoff all take part.
func runDevConsul(ctx context.Context, d devArgs, listen, host string, matchers int, ttl time.Duration, demo int, stdout, stderr io.Writer) error {
	mg := lifecycle.NewGroup()
	routerTLS, err := d.tls(identity.RoleRouter, "router")
	if err != nil {
		return err
	}
	for i := 1; i <= matchers; i++ {
		id := fmt.Sprintf("m%d", i)
		mtls, err := d.tls(identity.RoleMatcher, id)
		if err != nil {
			return errors.Join(err, mg.Stop())
		}
		args := append([]string{"--id", id, "--listen", host + ":0"}, d.shared()...)
		args = append(append(append(args, mtls...), d.dispatch()...), d.autosplit...)
		if ttl > 0 {
			args = append(args, "--ttl", ttl.String())
		}
		mg.Go(func(ctx context.Context) error { return runMatcher(ctx, args, stdout, stderr) })
	}
	rg := lifecycle.NewGroup()
	rg.Go(func(ctx context.Context) error {
		args := append(append(append([]string{"--listen", listen}, d.shared()...), routerTLS...), d.router()...)
		if d.metrics != "" {
			args = append(args, "--metrics", d.metrics)
		}
		return runRouter(ctx, args, stdout, stderr)
	})
	fmt.Fprintf(stdout, "geomatch dev: %d matchers and a router with membership in consul at %s; Ctrl-C stops\n", matchers, d.consul.addr)
	client, err := d.sec.announce(stdout, listen)
	if err != nil {
		return errors.Join(err, rg.Stop(), mg.Stop())
	}
	demoOpts, err := client.dialOptions(listen)
	if err != nil {
		return errors.Join(err, rg.Stop(), mg.Stop())
	}
	demoG := lifecycle.NewGroup()
	if demo > 0 {
		log, err := d.log.logger(stderr)
		if err != nil {
			return errors.Join(err, rg.Stop(), mg.Stop())
		}
		demoG.Go(func(ctx context.Context) error {
			if err := waitListening(ctx, listen, cluster.RingWait); err != nil {
				return err
			}
			return runDemoFleet(ctx, listen, demo, stdout, log, demoOpts...)
		})
	}
	err = lifecycle.WaitAny(ctx, rg, mg, demoG)
	fmt.Fprintln(stdout, "geomatch dev: stopping")
	err = errors.Join(err, demoG.Stop(), rg.Stop(), mg.Stop())
	fmt.Fprintln(stdout, "geomatch dev: stopped")
	return err
}
