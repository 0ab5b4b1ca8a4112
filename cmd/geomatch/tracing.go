package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/geomatch/geomatch/internal/tlsconfig"
	"github.com/geomatch/geomatch/internal/tracing"
)

// traceFlags turn OpenTelemetry tracing on (internal/tracing): spans of
// the process's calls, sent over OTLP/gRPC to a collector. Off unless
// --otlp-endpoint is given.
type traceFlags struct {
	endpoint string
	insecure bool
	ca       string
	cert     string
	key      string
	sample   float64
}

func (t *traceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.endpoint, "otlp-endpoint", "", "send trace spans over OTLP/gRPC to this collector (host:port, e.g. 127.0.0.1:4317); tracing is off without it")
	fs.BoolVar(&t.insecure, "otlp-insecure", false, "talk plaintext to the OTLP collector (default TLS, verified with the system's roots or --otlp-ca)")
	fs.StringVar(&t.ca, "otlp-ca", "", "PEM CA bundle that verifies the OTLP collector's certificate")
	fs.StringVar(&t.cert, "otlp-cert", "", "PEM client certificate for the OTLP collector (mutual TLS); with --otlp-key")
	fs.StringVar(&t.key, "otlp-key", "", "PEM private key of --otlp-cert")
	fs.Float64Var(&t.sample, "trace-sample", 1.0, "fraction of new traces recorded, in (0, 1]; calls between geomatch processes follow their caller's decision")
}

// start turns tracing on as the flags say, for a process named service
// (its service.name), before any server, fleet client or store is built.
// The returned stop flushes the spans still buffered, within
// tracing.ShutdownTimeout; call it once everything traced has stopped.
func (t *traceFlags) start(ctx context.Context, service string, lf *logFlags, stderr io.Writer) (stop func(), err error) {
	if t.endpoint == "" {
		if t.insecure || t.ca != "" || t.cert != "" || t.key != "" {
			return func() {}, errors.New("--otlp-insecure, --otlp-ca, --otlp-cert, --otlp-key: give --otlp-endpoint too")
		}
		return func() {}, nil
	}
	if !(t.sample > 0 && t.sample <= 1) {
		return func() {}, fmt.Errorf("--trace-sample: %v is not within (0, 1]", t.sample)
	}
	if tracing.Enabled() {
		// Already on in this process: geomatch dev --consul runs its
		// router and matchers in it, and set tracing up for all of them.
		return func() {}, nil
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return func() {}, err
	}
	cfg := tracing.Config{Endpoint: t.endpoint, Insecure: t.insecure, SampleRatio: t.sample, ServiceName: service, Log: log.With("role", "tracing")}
	files := tlsconfig.Files{CA: t.ca, Cert: t.cert, Key: t.key}
	if files.Enabled() {
		if t.insecure {
			return func() {}, errors.New("--otlp-insecure and --otlp-ca/--otlp-cert: give one")
		}
		if cfg.TLS, err = tlsconfig.Client(files); err != nil {
			return func() {}, fmt.Errorf("--otlp-ca, --otlp-cert, --otlp-key: %w", err)
		}
	}
	shutdown, err := tracing.Setup(ctx, cfg)
	if err != nil {
		return func() {}, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	log.Info("tracing on", "otlp_endpoint", t.endpoint, "sample", t.sample, "service", service)
	return func() {
		// The process's context is done by now: flush on a fresh one,
		// bounded by tracing.ShutdownTimeout.
		if err := shutdown(context.Background()); err != nil {
			log.Warn("tracing: spans lost at exit", "err", err)
		}
	}, nil
}
