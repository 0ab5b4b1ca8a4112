package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/geomatch/geomatch/internal/lifecycle"
	"github.com/geomatch/geomatch/resp"
	"github.com/geomatch/geomatch/router"
)

// serveRESP serves the RESP front door of r on addr in g (stopped with the
// router's other servers) and returns the address it listens on.
func serveRESP(g *lifecycle.Group, r *router.Router, addr string, log *slog.Logger) (string, error) {
	srv, err := resp.New(resp.Config{}, r, log.With("role", "resp"))
	if err != nil {
		return "", err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--resp-listen: %w", err)
	}
	if r.AuthRequired() {
		log.Warn("the RESP front door has no TLS: tokens sent with AUTH travel in plaintext; serve it on loopback or a private network only", "addr", lis.Addr().String())
	}
	g.Go(func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	return lis.Addr().String(), nil
}
