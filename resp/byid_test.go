package resp_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
)

// TestByIDCommands: GET, GEOPOS, GEODIST, SCAN and DEL through go-redis,
// over drivers on several matchers, in Tile38's and Redis's reply shapes;
// a key other than fleet is a class. The matchers are reached in process
// and over loopback gRPC.
func TestByIDCommands(t *testing.T) {
	for _, grpc := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "internal-grpc"}[grpc], func(t *testing.T) {
			testByIDCommands(t, cluster.DevConfig{Matchers: 3, InternalGRPC: grpc})
		})
	}
}

func testByIDCommands(t *testing.T, cfg cluster.DevConfig) {
	d := startDoor(t, cfg)
	c := d.client(t)
	ctx := ctxT(t)
	at := map[string]geo.LatLng{
		"a": {Lat: 40.7580, Lng: -73.9855}, "b": {Lat: 40.7061, Lng: -74.0087},
		"c": {Lat: 40.8296, Lng: -73.9262}, "d": {Lat: -33.8688, Lng: 151.2093},
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		key := "fleet"
		if id == "b" {
			key = "suv"
		}
		if got, err := c.Do(ctx, "SET", key, id, "POINT", at[id].Lat, at[id].Lng).Text(); err != nil || got != "OK" {
			t.Fatalf("SET %s: %q, %v", id, got, err)
		}
	}

	obj, err := c.Do(ctx, "GET", "fleet", "d").Text()
	if err != nil || obj != `{"type":"Point","coordinates":[151.2093,-33.8688]}` {
		t.Fatalf("GET fleet d: %q, %v", obj, err)
	}
	pt, err := c.Do(ctx, "GET", "fleet", "a", "POINT").StringSlice()
	if err != nil || !slices.Equal(pt, []string{"40.758", "-73.9855"}) {
		t.Fatalf("GET fleet a POINT: %v, %v", pt, err)
	}
	if _, err := c.Do(ctx, "GET", "fleet", "nobody").Result(); err != redis.Nil {
		t.Fatalf("GET of an unknown id: %v, want nil", err)
	}
	if _, err := c.Do(ctx, "GET", "suv", "a").Result(); err != redis.Nil {
		t.Fatalf("GET suv a (a has no class suv): %v, want nil", err)
	}

	pos, err := c.GeoPos(ctx, "fleet", "a", "nobody", "c").Result()
	if err != nil || len(pos) != 3 || pos[1] != nil || math.Abs(pos[0].Latitude-40.758) > 1e-9 || math.Abs(pos[2].Longitude+73.9262) > 1e-9 {
		t.Fatalf("GEOPOS: %v, %v", pos, err)
	}
	dist, err := c.GeoDist(ctx, "fleet", "a", "b", "km").Result()
	want := geo.DistanceM(at["a"], at["b"]) / 1000
	if err != nil || math.Abs(dist-want) > 1e-4 {
		t.Fatalf("GEODIST a b km: %v, %v; want %.4f", dist, err, want)
	}
	if _, err := c.GeoDist(ctx, "fleet", "a", "nobody", "m").Result(); err != redis.Nil {
		t.Fatalf("GEODIST with an unknown member: %v, want nil", err)
	}

	page, err := c.Do(ctx, "SCAN", "fleet", "LIMIT", 2, "IDS").Slice()
	if err != nil || len(page) != 2 || page[0] != int64(2) || !slices.Equal(toStrings(page[1]), []string{"a", "b"}) {
		t.Fatalf("SCAN fleet LIMIT 2 IDS: %v, %v", page, err)
	}
	page, err = c.Do(ctx, "SCAN", "fleet", "CURSOR", 2, "LIMIT", 2, "IDS").Slice()
	if err != nil || page[0] != int64(0) || !slices.Equal(toStrings(page[1]), []string{"c", "d"}) {
		t.Fatalf("SCAN fleet CURSOR 2 LIMIT 2 IDS: %v, %v", page, err)
	}
	if n, err := c.Do(ctx, "SCAN", "suv", "COUNT").Int(); err != nil || n != 1 {
		t.Fatalf("SCAN suv COUNT: %d, %v", n, err)
	}

	if n, err := c.Do(ctx, "DEL", "fleet", "c").Int(); err != nil || n != 1 {
		t.Fatalf("DEL fleet c: %d, %v", n, err)
	}
	deadline := time.Now().Add(5 * time.Second) // evictions are queued
	for {
		if _, err := c.Do(ctx, "GET", "fleet", "c").Result(); err == redis.Nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("c still there 5 s after DEL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := c.Do(ctx, "DEL", "fleet", "c").Int(); err != nil || n != 0 {
		t.Fatalf("DEL of a deleted id: %d, %v", n, err)
	}

	for _, bad := range [][]any{
		{"GET", "fleet"}, {"GET", "fleet", "a", "HASH", "7"}, {"DEL", "fleet"}, {"SCAN", "fleet", "LIMIT", 0},
		{"SCAN", "fleet", "CURSOR", 999, "LIMIT", 10}, {"GEODIST", "fleet", "a", "b", "parsec"}, {"GEOPOS"},
		{"GET", "fleet", strings.Repeat("x", 1<<20)},
	} {
		if err := c.Do(ctx, bad...).Err(); err == nil || err == redis.Nil || !strings.HasPrefix(err.Error(), "ERR") {
			t.Fatalf("%v: %v, want an ERR reply", bad[:min(len(bad), 4)], err)
		}
	}
}

func toStrings(v any) []string {
	vs, _ := v.([]any)
	out := make([]string, len(vs))
	for i, x := range vs {
		out[i], _ = x.(string)
	}
	return out
}
