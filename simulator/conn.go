package simulator

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/geomatch/geomatch/client"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// dial opens a client connection (package client) to the target; opts
// (TLS, a token) come last and win. Calls are tried once: the run
// measures the API, failures included, rather than hiding them behind
// retries.
func dial(target string, opts []grpc.DialOption) (*client.Conn, error) {
	conn, err := client.Dial(target, client.Insecure(), client.WithRetry(client.NoRetry), client.WithDialOptions(opts...))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return conn, nil
}

// api is the connection of the riders' and the run's unary calls (the
// last one dialled; the others carry driver streams).
func (e *engine) api() *client.Conn { return e.conns[len(e.conns)-1] }

// connectTimeout bounds opening one driver stream (hello and its ack).
const connectTimeout = 20 * time.Second

// connectDrivers opens every driver's session, ConnectConcurrency at a
// time. It counts progress in connected and gives up early if ctx ends or
// too many sessions fail.
func (e *engine) connectDrivers(ctx context.Context, connected *atomic.Int64) error {
	next := atomic.Int64{}
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for i := 0; i < e.cfg.ConnectConcurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := int(next.Add(1) - 1)
				if n >= len(e.drivers) {
					return
				}
				if err := e.connect(e.drivers[n]); err != nil {
					if failed.Add(1) == 1 {
						firstErr.Store(&err)
					}
					if int(failed.Load()) > max(10, len(e.drivers)/100) {
						return
					}
					continue
				}
				connected.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := failed.Load(); n > 0 {
		err := *firstErr.Load()
		if int(n) > max(10, len(e.drivers)/100) {
			return fmt.Errorf("open driver streams: %d failed, first: %w", n, err)
		}
		e.warnOnce("connect", "some driver streams could not be opened; those drivers sit out", "failed", n, "err", err)
	}
	return nil
}

// connect opens d's session (hello and its ack) on its worker's
// connection. The session's goroutine hands d's events to its worker; it
// is tracked by e.recvWG and ends when the stream does, or when
// e.streamsCtx ends. The simulated app does not reconnect: a broken
// stream takes its driver out of the run, as the report counts.
func (e *engine) connect(d *driver) error {
	ctx := e.streamsCtx
	e.recvWG.Add(1)
	sess, err := e.conns[e.connOf(d.idx)].ConnectDriver(ctx, client.DriverConfig{
		DriverID: d.id, VehicleClass: d.class,
		NoReconnect: true, NoAcks: true, ConnectTimeout: connectTimeout,
		OnEvent: func(ev *geomatchv1.DriverEvent) { d.w.post(ctx, inEvent{d: d, ev: ev}) },
		OnClose: func(err error) {
			defer e.recvWG.Done()
			if err != nil && ctx.Err() == nil {
				d.w.post(ctx, inEvent{d: d, recvErr: err})
			}
		},
	})
	if err != nil {
		e.recvWG.Done()
		return err
	}
	context.AfterFunc(ctx, sess.Abort)
	d.sess, d.connected = sess, true
	return nil
}
