package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// MaxNearbyInFlight bounds the questions of one NearbyStream waiting for
// their answers; Nearby waits for a free slot beyond it.
const MaxNearbyInFlight = 1024

// NearbyStream asks many nearby questions over one RiderService.NearbyStream
// stream, for callers that ask thousands a second (dispatch back ends): each
// question gets a tag, and its answer is matched to it by the tag, in
// whatever order the answers come. Nearby is safe for concurrent use;
// the stream owns one goroutine, which receives the answers, and Close
// waits for it.
type NearbyStream struct {
	c      *Conn
	stream geomatchv1.RiderService_NearbyStreamClient
	cancel context.CancelFunc
	slots  chan struct{}

	sendMu sync.Mutex // one Send at a time

	mu      sync.Mutex
	waiting map[string]chan *geomatchv1.NearbyDriversResponse
	next    uint64
	err     error // why the stream ended; set before done closes

	done chan struct{}
}

// OpenNearbyStream opens a nearby stream; it lives until Close or until
// ctx ends.
func (c *Conn) OpenNearbyStream(ctx context.Context) (*NearbyStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	st, err := c.riders.NearbyStream(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("nearby stream: %w", err)
	}
	s := &NearbyStream{c: c, stream: st, cancel: cancel, slots: make(chan struct{}, MaxNearbyInFlight),
		waiting: make(map[string]chan *geomatchv1.NearbyDriversResponse), done: make(chan struct{})}
	go s.receive()
	return s, nil
}

// receive hands each answer to the question with its tag, until the
// stream ends; then it fails the questions still waiting.
func (s *NearbyStream) receive() {
	var err error
	for {
		var resp *geomatchv1.NearbyDriversResponse
		resp, err = s.stream.Recv()
		if err != nil {
			break
		}
		s.mu.Lock()
		ch, ok := s.waiting[resp.GetTag()]
		delete(s.waiting, resp.GetTag())
		s.mu.Unlock()
		if ok {
			ch <- resp // buffered; an answer nobody waits for any more is dropped with ch
		}
	}
	if errors.Is(err, io.EOF) {
		err = status.Error(codes.Unavailable, "nearby stream: the router ended the stream")
	} else {
		err = fmt.Errorf("nearby stream: %w", err)
	}
	s.mu.Lock()
	s.err = err
	s.waiting = nil
	s.mu.Unlock()
	close(s.done)
}

// Nearby asks one question over the stream and waits for its answer. A
// question the router answers with an error returns it as a gRPC status
// error (INVALID_ARGUMENT naming the field, ...); an UNAVAILABLE one is
// asked again under the connection's RetryPolicy within ctx's deadline.
// req is not changed (the tag is the stream's own). Once the stream has
// ended, every question fails with why it ended: open another.
func (s *NearbyStream) Nearby(ctx context.Context, req *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	return retry(ctx, s.c.cfg.retry, func(ctx context.Context) (*geomatchv1.NearbyDriversResponse, error) {
		return s.ask(ctx, req)
	})
}

func (s *NearbyStream) ask(ctx context.Context, req *geomatchv1.NearbyDriversRequest) (*geomatchv1.NearbyDriversResponse, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-s.done:
		return nil, s.err
	}
	defer func() { <-s.slots }()
	ch := make(chan *geomatchv1.NearbyDriversResponse, 1)
	s.mu.Lock()
	if s.waiting == nil {
		s.mu.Unlock()
		<-s.done
		return nil, s.err
	}
	s.next++
	tag := strconv.FormatUint(s.next, 36)
	s.waiting[tag] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		if s.waiting != nil {
			delete(s.waiting, tag)
		}
		s.mu.Unlock()
	}
	q := &geomatchv1.NearbyDriversRequest{Position: req.GetPosition(), Limit: req.GetLimit(), RadiusM: req.GetRadiusM(), VehicleClass: req.GetVehicleClass(), Tag: tag}
	s.sendMu.Lock()
	err := s.stream.Send(q)
	s.sendMu.Unlock()
	if err != nil {
		forget()
		<-s.done // a failed Send means the stream is over; receive says why
		return nil, s.err
	}
	select {
	case resp := <-ch:
		if e := resp.GetError(); e != nil {
			return nil, status.Error(codes.Code(e.GetCode()), e.GetMessage())
		}
		return resp, nil
	case <-ctx.Done():
		forget()
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-s.done:
		return nil, s.err
	}
}

// Close ends the stream: questions still waiting fail. It returns once
// the stream's goroutine is gone.
func (s *NearbyStream) Close() error {
	s.sendMu.Lock()
	_ = s.stream.CloseSend()
	s.sendMu.Unlock()
	s.cancel()
	<-s.done
	return nil
}

// NearbyBatch asks every question of reqs over the stream at once and
// waits for all their answers: one round trip for the lot, the way a
// dispatch back end pipelines a tick's questions. answers[i] is the answer
// to reqs[i], nil where that question failed, and errs[i] its error (nil
// when answered); it is not retried. At most MaxNearbyInFlight questions
// per call. The first return is the stream's own failure, if any: then
// every unanswered question failed with it.
func (s *NearbyStream) NearbyBatch(ctx context.Context, reqs []*geomatchv1.NearbyDriversRequest) (answers []*geomatchv1.NearbyDriversResponse, errs []error, err error) {
	if len(reqs) > MaxNearbyInFlight {
		return nil, nil, status.Errorf(codes.InvalidArgument, "nearby batch: %d questions, at most %d", len(reqs), MaxNearbyInFlight)
	}
	answers, errs = make([]*geomatchv1.NearbyDriversResponse, len(reqs)), make([]error, len(reqs))
	held := 0 // slots taken, given back however the call ends
	defer func() {
		for range held {
			<-s.slots
		}
	}()
	for range reqs {
		select {
		case s.slots <- struct{}{}:
			held++
		case <-ctx.Done():
			return nil, nil, status.FromContextError(ctx.Err()).Err()
		case <-s.done:
			return nil, nil, s.err
		}
	}
	// One channel for the batch: answers carry their tags, which say the
	// question (the batch's first tag plus its index).
	ch := make(chan *geomatchv1.NearbyDriversResponse, len(reqs))
	s.mu.Lock()
	if s.waiting == nil {
		s.mu.Unlock()
		<-s.done
		return nil, nil, s.err
	}
	first := s.next + 1
	s.next += uint64(len(reqs))
	tags := make([]string, len(reqs))
	for i := range reqs {
		tags[i] = strconv.FormatUint(first+uint64(i), 36)
		s.waiting[tags[i]] = ch
	}
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		if s.waiting != nil {
			for _, tag := range tags {
				delete(s.waiting, tag)
			}
		}
		s.mu.Unlock()
	}
	s.sendMu.Lock()
	for i, req := range reqs {
		q := &geomatchv1.NearbyDriversRequest{Position: req.GetPosition(), Limit: req.GetLimit(), RadiusM: req.GetRadiusM(), VehicleClass: req.GetVehicleClass(), Tag: tags[i]}
		if err = s.stream.Send(q); err != nil {
			break
		}
	}
	s.sendMu.Unlock()
	if err != nil {
		forget()
		<-s.done // a failed Send means the stream is over; receive says why
		return nil, nil, s.err
	}
	for got := 0; got < len(reqs); got++ {
		select {
		case resp := <-ch:
			n, perr := strconv.ParseUint(resp.GetTag(), 36, 64)
			i := int(n - first)
			if perr != nil || n < first || i >= len(reqs) {
				got-- // not this batch's (cannot happen: tags are the stream's own)
				continue
			}
			if e := resp.GetError(); e != nil {
				errs[i] = status.Error(codes.Code(e.GetCode()), e.GetMessage())
				continue
			}
			answers[i] = resp
		case <-ctx.Done():
			forget()
			return nil, nil, status.FromContextError(ctx.Err()).Err()
		case <-s.done:
			return nil, nil, s.err
		}
	}
	return answers, errs, nil
}
