package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// cutOffSource is a relaying source (like membership.Consul) whose own
// backend cannot be reached: Refresh fails, and only Adopt moves it.
type cutOffSource struct {
	mu      sync.Mutex
	rec     membership.Record
	cur     *shardmap.Map
	changed chan struct{}
	adopted []string
}

func newCutOffSource(t *testing.T, doc shardmap.Doc) *cutOffSource {
	t.Helper()
	m, err := shardmap.NewMap(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &cutOffSource{rec: membership.Record{Doc: doc}, cur: m, changed: make(chan struct{})}
}

func (s *cutOffSource) Current() (*shardmap.Map, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.changed
}

func (s *cutOffSource) Refresh(context.Context) error {
	return errors.New("consul unreachable")
}

func (s *cutOffSource) Kind() string { return "consul" }

func (s *cutOffSource) Record() membership.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

func (s *cutOffSource) Adopt(rec membership.Record, from string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Doc.Epoch <= s.cur.Epoch() {
		return false
	}
	m, err := shardmap.NewMap(rec.Doc)
	if err != nil {
		return false
	}
	s.rec, s.cur = rec, m
	s.adopted = append(s.adopted, from)
	close(s.changed)
	s.changed = make(chan struct{})
	return true
}

// ringMatcher is a live fakeMatcher that also answers Ring with rec.
type ringMatcher struct {
	*fakeMatcher
	rec membership.Record
}

func (r *ringMatcher) Ring(_ context.Context, req *matcherv1.RingRequest) (*matcherv1.RingResponse, error) {
	resp := &matcherv1.RingResponse{Epoch: r.rec.Doc.Epoch}
	if r.rec.Doc.Epoch > req.GetKnownEpoch() {
		data, err := json.Marshal(r.rec)
		if err != nil {
			return nil, err
		}
		resp.Record = data
	}
	return resp, nil
}

// TestRouterCutOffFromConsulLearnsTheRingFromMatchers: a client whose
// source cannot read Consul, with updates waiting for an owner that left
// the ring, adopts the newer ring a live matcher holds and delivers the
// updates to the new owner; none is refused, none waits for Consul.
func TestRouterCutOffFromConsulLearnsTheRingFromMatchers(t *testing.T) {
	live := &ringMatcher{fakeMatcher: &fakeMatcher{id: "m1", epoch: 2, outcome: func(uint64) matcherv1.Outcome { return matcherv1.Outcome_OUTCOME_APPLIED }}}
	liveAddr, deadAddr := serveFake(t, live), deadAddr(t)
	old := shardmap.DefaultDoc([]shardmap.Member{{ID: "m1", Addr: liveAddr, Weight: 1}, {ID: "m2", Addr: deadAddr, Weight: 1}})
	old.Epoch = 1
	moved := shardmap.DefaultDoc([]shardmap.Member{{ID: "m1", Addr: liveAddr, Weight: 1}})
	moved.Epoch = 2
	live.rec = membership.Record{Doc: moved, Writer: "m1", Reason: "matchers changed"}
	src := newCutOffSource(t, old)
	c := runClient(t, Config{}, src)
	m, _ := src.Current()
	pos := positionOwnedBy(t, m, "m2")

	const n = 20
	r := newResults(n)
	for i := range n {
		c.Send(context.Background(), Update{DriverID: "d" + string(rune('a'+i)), Pos: pos, TimestampMs: 1}, r, int32(i), time.Now().Add(5*time.Second))
	}
	for i, res := range r.wait(t) {
		if res.Outcome != driver.Applied {
			t.Fatalf("update %d: %v %q, want applied by m1 at the adopted ring", i, res.Outcome, res.Msg)
		}
	}
	if got := c.Ring().Epoch(); got != 2 {
		t.Fatalf("ring epoch %d, want 2 (adopted from m1)", got)
	}
	if c.RingsFromMatchers() != 1 || len(src.adopted) != 1 || src.adopted[0] != "matcher m1" {
		t.Fatalf("rings from matchers %d, adopted from %v: want one, from matcher m1", c.RingsFromMatchers(), src.adopted)
	}
}
