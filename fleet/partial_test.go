package fleet

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/membership"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// liveMatcher answers every search with one driver, "near", and records
// the shards it was asked for.
type liveMatcher struct{ fakeMatcher }

func (f *liveMatcher) Nearby(_ context.Context, req *matcherv1.NearbyRequest) (*matcherv1.NearbyResponse, error) {
	return &matcherv1.NearbyResponse{Epoch: req.GetEpoch(), Neighbors: []*matcherv1.Neighbor{{DriverId: "near", Lat: times.Lat, Lng: times.Lng}}}, nil
}

// deadAddr returns a loopback address nobody listens at.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// twoMembers returns a ring of members m1 and m2 at these addresses (in
// the partial-answer tests, m1 live and m2 dead).
func twoMembers(t *testing.T, m1, m2 string) *membership.Local {
	t.Helper()
	src, err := membership.NewLocal(shardmap.DefaultDoc([]shardmap.Member{
		{ID: "m1", Addr: m1, Weight: 1}, {ID: "m2", Addr: m2, Weight: 1},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// removeMember takes member id off src's ring, as the ring writer does when
// its health check lapses.
func removeMember(t *testing.T, src *membership.Local, id string) {
	t.Helper()
	if _, err := src.Update(func(d *shardmap.Doc) error {
		d.Members = slices.DeleteFunc(d.Members, func(m shardmap.Member) bool { return m.ID == id })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSearchLeavesAnUnreachableOwnersShardsOutAndSaysSo: with one owner
// down for the whole budget, Search answers before its deadline with the
// live owner's drivers and the dead owner's shards in Missing, exactly
// those of the search it owns; the strict Nearby fails naming the node.
func TestSearchLeavesAnUnreachableOwnersShardsOutAndSaysSo(t *testing.T) {
	src := twoMembers(t, serveFake(t, &liveMatcher{}), deadAddr(t))
	c := runClient(t, Config{QueryTimeout: time.Second}, src)
	q := Query{Pos: times, RadiusM: 20_000, K: 5}
	m, _ := src.Current()
	var want []shardmap.Cell
	for _, tg := range m.Route(q.Pos, q.RadiusM) {
		if tg.Member.ID == "m2" {
			want = append(want, tg.Shards...)
		}
	}
	if len(want) == 0 {
		t.Fatal("the search touches no shard of m2: pick a wider radius")
	}
	slices.Sort(want)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := c.Search(ctx, q)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if !res.Partial() || !slices.Equal(res.Missing, want) {
		t.Fatalf("Missing = %d shards, want m2's %d", len(res.Missing), len(want))
	}
	if len(res.Drivers) != 1 || res.Drivers[0].GetDriverId() != "near" {
		t.Fatalf("Drivers = %v, want the live owner's", res.Drivers)
	}

	_, err = c.Nearby(ctx, q)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "m2") {
		t.Fatalf("strict Nearby: %v, want UNAVAILABLE naming m2", err)
	}
}

// TestSearchWaitsForAFailover: an owner that dies and whose shards move
// to a live node while a search waits gives an exact answer, not a
// partial one.
func TestSearchWaitsForAFailover(t *testing.T) {
	src := twoMembers(t, serveFake(t, &liveMatcher{}), deadAddr(t))
	c := runClient(t, Config{QueryTimeout: 5 * time.Second}, src)
	go func() { // the failover: m2 leaves the ring
		time.Sleep(200 * time.Millisecond)
		_, _ = src.Update(func(d *shardmap.Doc) error {
			d.Members = slices.DeleteFunc(d.Members, func(m shardmap.Member) bool { return m.ID == "m2" })
			return nil
		})
	}()
	res, err := c.Search(context.Background(), Query{Pos: times, RadiusM: 20_000, K: 5})
	if err != nil || res.Partial() {
		t.Fatalf("Search across a failover: %v, %d shards missing; want an exact answer", err, len(res.Missing))
	}
}

// TestSearchEndsWithTheCaller: a caller that gives up gets its context's
// error, not a partial answer.
func TestSearchEndsWithTheCaller(t *testing.T) {
	src := twoMembers(t, serveFake(t, &liveMatcher{}), deadAddr(t))
	c := runClient(t, Config{QueryTimeout: 5 * time.Second}, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Search(ctx, Query{Pos: times, RadiusM: 20_000, K: 5}); status.Code(err) != codes.Canceled {
		t.Fatalf("Search with a canceled context: %v, want CANCELED", err)
	}
}
