package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// dial opens a client connection to the target; opts (TLS, a token) come
// last and win.
func dial(target string, opts []grpc.DialOption) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20))}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return conn, nil
}

// connectTimeout bounds opening one driver stream (hello and its ack).
const connectTimeout = 20 * time.Second

// connectDrivers opens every driver's Connect stream, ConnectConcurrency at
// a time, and starts one receive goroutine per stream (tracked by
// e.recvWG, ended by the stream's context). It counts progress in
// connected and gives up early if ctx ends or too many streams fail.
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

// connect opens d's stream, says hello and waits for the ack.
func (e *engine) connect(d *driver) error {
	ctx, cancel := context.WithCancel(e.streamsCtx)
	client := e.driverClients[e.connOf(d.idx)]
	stream, err := client.Connect(ctx)
	if err == nil {
		err = stream.Send(&geomatchv1.DriverMessage{Msg: &geomatchv1.DriverMessage_Hello{Hello: &geomatchv1.DriverHello{DriverId: d.id, VehicleClass: d.class}}})
	}
	var ack *geomatchv1.DriverEvent
	if err == nil {
		// Wait for the ack, bounded: a Recv does not take a deadline.
		t := time.AfterFunc(connectTimeout, cancel)
		ack, err = stream.Recv()
		t.Stop()
		if err == nil && ack.GetConnected() == nil {
			err = fmt.Errorf("first event is %T, not the connect ack", ack.GetEvent())
		}
	}
	if err != nil {
		cancel()
		return fmt.Errorf("driver %s: connect: %w", d.id, err)
	}
	d.stream, d.cancel, d.connected = stream, cancel, true
	e.recvWG.Add(1)
	go func() {
		defer e.recvWG.Done()
		e.receive(ctx, d)
	}()
	return nil
}

// receive hands d's stream events to its worker until the stream ends.
func (e *engine) receive(ctx context.Context, d *driver) {
	for {
		ev, err := d.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				d.w.post(ctx, inEvent{d: d, recvErr: err})
			}
			return
		}
		if !d.w.post(ctx, inEvent{d: d, ev: ev}) {
			return
		}
	}
}
