package resp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/cluster"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/servertest"
	"github.com/geomatch/geomatch/resp"
	"github.com/geomatch/geomatch/router"
)

// TestGoRedisReplies checks the reply shapes through go-redis: Redis GEO
// through its typed methods, Tile38 commands through Do, in both output
// formats.
func TestGoRedisReplies(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	c := d.client(t)
	ctx := ctxT(t)

	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING: %q, %v", got, err)
	}
	if got, err := c.Do(ctx, "PING", "hi").Text(); err != nil || got != "hi" {
		t.Fatalf("PING hi: %q, %v", got, err)
	}
	// go-redis's defaults: HELLO 3 and CLIENT SETINFO are refused, and it
	// goes on in RESP2.
	plain := redis.NewClient(&redis.Options{Addr: d.addr})
	defer plain.Close()
	if got, err := plain.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING from a default go-redis client: %q, %v", got, err)
	}
	n, err := c.GeoAdd(ctx, "suv", &redis.GeoLocation{Name: "a", Longitude: -73.9855, Latitude: 40.7580},
		&redis.GeoLocation{Name: "b", Longitude: -73.9800, Latitude: 40.7600}).Result()
	if err != nil || n != 2 {
		t.Fatalf("GEOADD: %d, %v", n, err)
	}
	if got, err := c.Do(ctx, "SET", "fleet", "c", "POINT", 40.7590, -73.9850).Text(); err != nil || got != "OK" {
		t.Fatalf("SET: %q, %v", got, err)
	}

	names, err := c.GeoSearch(ctx, "suv", &redis.GeoSearchQuery{Longitude: -73.9855, Latitude: 40.7580, Radius: 2, RadiusUnit: "km", Sort: "ASC", Count: 10}).Result()
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("GEOSEARCH suv: %v, %v (want a, b: c has no class suv)", names, err)
	}
	locs, err := c.GeoSearchLocation(ctx, "fleet", &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: -73.9855, Latitude: 40.7580, Radius: 2000, RadiusUnit: "m", Sort: "ASC", Count: 2},
		WithCoord:      true, WithDist: true,
	}).Result()
	if err != nil || len(locs) != 2 || locs[0].Name != "a" || locs[1].Name != "c" {
		t.Fatalf("GEOSEARCH fleet WITHCOORD WITHDIST: %+v, %v", locs, err)
	}
	if locs[0].Dist != 0 || locs[0].Longitude != -73.9855 || locs[0].Latitude != 40.7580 {
		t.Errorf("first location %+v, want a at its own position, distance 0", locs[0])
	}
	wantDist := geo.DistanceM(geo.LatLng{Lat: 40.7580, Lng: -73.9855}, geo.LatLng{Lat: 40.7590, Lng: -73.9850})
	if math.Abs(locs[1].Dist-wantDist) > 1e-4 {
		t.Errorf("distance of c: %v m, want %v", locs[1].Dist, wantDist)
	}

	// Tile38's RESP shapes: [cursor, [[id, object(, distance)], ...]].
	v, err := c.Do(ctx, "NEARBY", "fleet", "LIMIT", 2, "DISTANCE", "POINT", 40.7580, -73.9855, 2000).Slice()
	if err != nil || len(v) != 2 || v[0] != int64(2) { // b is next
		t.Fatalf("NEARBY: %#v, %v", v, err)
	}
	items := v[1].([]any)
	first := items[0].([]any)
	if len(items) != 2 || len(first) != 3 || first[0] != "a" || first[1] != `{"type":"Point","coordinates":[-73.9855,40.758]}` || first[2] != "0" {
		t.Fatalf("NEARBY items: %#v", items)
	}
	if v, err = c.Do(ctx, "NEARBY", "fleet", "LIMIT", 1, "POINTS", "POINT", 40.7580, -73.9855, 2000).Slice(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v) != "[1 [[a [40.758 -73.9855]]]]" {
		t.Errorf("NEARBY LIMIT 1 POINTS: %v, want cursor 1 (more to come) and [a [40.758 -73.9855]]", v)
	}
	if v, err = c.Do(ctx, "NEARBY", "fleet", "CURSOR", 1, "LIMIT", 5, "IDS", "POINT", 40.7580, -73.9855, 2000).Slice(); err != nil || fmt.Sprint(v) != "[0 [c b]]" {
		t.Errorf("NEARBY CURSOR 1 IDS: %v, %v; want [0 [c b]]", v, err)
	}
	if n, err := c.Do(ctx, "WITHIN", "suv", "COUNT", "CIRCLE", 40.7580, -73.9855, 2000).Int(); err != nil || n != 2 {
		t.Errorf("WITHIN COUNT: %d, %v", n, err)
	}
	if v, err = c.Do(ctx, "INTERSECTS", "fleet", "IDS", "BOUNDS", 40.7585, -73.99, 40.77, -73.97).Slice(); err != nil || fmt.Sprint(v) != "[0 [b c]]" {
		t.Errorf("INTERSECTS BOUNDS: %v, %v; want [0 [b c]] (nearest the box's centre first; a is outside)", v, err)
	}

	// OUTPUT json holds for the connection: one go-redis Conn.
	conn := c.Conn()
	defer conn.Close()
	if got, err := conn.Do(ctx, "OUTPUT", "json").Text(); err != nil || !strings.HasPrefix(got, `{"ok":true,"elapsed":"`) {
		t.Fatalf("OUTPUT json: %q, %v", got, err)
	}
	js, err := conn.Do(ctx, "NEARBY", "fleet", "LIMIT", 1, "DISTANCE", "POINT", 40.7580, -73.9855, 2000).Text()
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		OK      bool `json:"ok"`
		Objects []struct {
			ID     string `json:"id"`
			Object struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"object"`
			Distance *float64 `json:"distance"`
		} `json:"objects"`
		Count   int    `json:"count"`
		Cursor  int    `json:"cursor"`
		Elapsed string `json:"elapsed"`
	}
	if err := json.Unmarshal([]byte(js), &ans); err != nil {
		t.Fatalf("NEARBY json %s: %v", js, err)
	}
	if !ans.OK || ans.Count != 1 || ans.Cursor != 1 || ans.Objects[0].ID != "a" || ans.Objects[0].Object.Type != "Point" ||
		!slices.Equal(ans.Objects[0].Object.Coordinates, []float64{-73.9855, 40.758}) || ans.Objects[0].Distance == nil || ans.Elapsed == "" {
		t.Errorf("NEARBY json: %s", js)
	}
	bad, err := conn.Do(ctx, "NEARBY", "fleet", "POINT", "x", 1).Text()
	if err != nil || !strings.HasPrefix(bad, `{"ok":false,"err":"NEARBY: lat: \"x\" is not a finite number"`) {
		t.Errorf("NEARBY error in json: %q, %v", bad, err)
	}
	if got, err := conn.Do(ctx, "OUTPUT", "resp").Text(); err != nil || got != "OK" {
		t.Errorf("OUTPUT resp: %q, %v", got, err)
	}
	if got, err := conn.Do(ctx, "OUTPUT").Text(); err != nil || got != "resp" {
		t.Errorf("OUTPUT: %q, %v", got, err)
	}
}

// TestPipelines checks that pipelined commands answer in order, searches
// run together and updates before a search are seen by it.
func TestPipelines(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	c := d.client(t)
	ctx := ctxT(t)
	pipe := c.Pipeline()
	var cmds []*redis.Cmd
	for i := range 20 {
		cmds = append(cmds, pipe.Do(ctx, "SET", "fleet", fmt.Sprintf("p%02d", i), "POINT", 10+float64(i)*0.001, 20))
	}
	for i := range 20 {
		cmds = append(cmds, pipe.Do(ctx, "NEARBY", "fleet", "LIMIT", 1, "IDS", "POINT", 10+float64(i)*0.001, 20, 50))
	}
	cmds = append(cmds, pipe.Do(ctx, "NOSUCH"), pipe.Do(ctx, "PING"))
	// One driver moved three times in one pipeline: the last position wins.
	moves := []*redis.Cmd{pipe.Do(ctx, "SET", "fleet", "mover", "POINT", 30, 30), pipe.Do(ctx, "SET", "fleet", "mover", "POINT", 31, 31),
		pipe.Do(ctx, "SET", "fleet", "mover", "POINT", 32, 32), pipe.Do(ctx, "NEARBY", "fleet", "POINTS", "POINT", 32, 32, 10)}
	if _, err := pipe.Exec(ctx); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("pipeline: %v, want the unknown command's error", err)
	}
	for i := range 20 {
		if got, err := cmds[i].Text(); err != nil || got != "OK" {
			t.Errorf("SET %d: %q, %v", i, got, err)
		}
		v, err := cmds[20+i].Slice()
		if want := fmt.Sprintf("[0 [p%02d]]", i); err != nil || fmt.Sprint(v) != want {
			t.Errorf("NEARBY %d: %v, %v; want %s", i, v, err, want)
		}
	}
	if got, err := cmds[41].Text(); err != nil || got != "PONG" {
		t.Errorf("PING after an error: %q, %v", got, err)
	}
	for _, m := range moves[:3] {
		if err := m.Err(); err != nil {
			t.Errorf("%v: %v", m.Args(), err)
		}
	}
	if v, err := moves[3].Slice(); err != nil || fmt.Sprint(v) != "[0 [[mover [32 32]]]]" {
		t.Errorf("after three moves in a pipeline: %v, %v; want mover at 32,32", v, err)
	}
}

// waitSettled waits until every driver is held by exactly one matcher
// (evictions of copies left behind are asynchronous).
func waitSettled(t *testing.T, d *testDoor, fleet []driverAt) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		bad := ""
		for _, dr := range fleet {
			held := 0
			for _, n := range d.Nodes {
				if _, ok := n.Index().Get(dr.id); ok {
					held++
				}
			}
			if held != 1 {
				bad = fmt.Sprintf("%s held by %d nodes", dr.id, held)
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not settle: %s", bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upload sends the fleet with GEOADD, 500 members a command, pipelined.
func upload(t *testing.T, c *redis.Client, fleet []driverAt) {
	t.Helper()
	ctx := ctxT(t)
	pipe := c.Pipeline()
	for lo := 0; lo < len(fleet); lo += 500 {
		var locs []*redis.GeoLocation
		for _, dr := range fleet[lo:min(lo+500, len(fleet))] {
			locs = append(locs, &redis.GeoLocation{Name: dr.id, Longitude: dr.pos.Lng, Latitude: dr.pos.Lat})
		}
		pipe.GeoAdd(ctx, "fleet", locs...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		t.Fatalf("GEOADD: %v", err)
	}
	total := int64(0)
	for _, cmd := range cmds {
		total += cmd.(*redis.IntCmd).Val()
	}
	if total != int64(len(fleet)) {
		t.Fatalf("GEOADD accepted %d of %d", total, len(fleet))
	}
}

// TestNearbyEqualsBruteForce: NEARBY, GEOSEARCH, WITHIN CIRCLE and
// INTERSECTS BOUNDS answers through the RESP door equal a brute-force
// great-circle search over the fleet (ids, order, distances), at shard
// borders, the poles and the antimeridian.
func TestNearbyEqualsBruteForce(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	c := d.client(t)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(5, 7))
	fleet := makeFleet(r, 3000)
	upload(t, c, fleet)
	waitSettled(t, d, fleet)
	pts := points(fleet)
	queries := 300
	if testing.Short() || raceEnabled {
		queries = 45 // enough to catch a plumbing mistake quickly
	}
	radii := []float64{50, 300, 1000, 5000, 20000, 100000}
	for q := range queries {
		h := hotspots[r.IntN(len(hotspots))]
		center := jitter(r, h.center, h.spread*1.5)
		radius := radii[r.IntN(len(radii))]
		limit := []int{1, 3, 10, 100, 1000}[r.IntN(5)]
		want := geo.NearestBrute(pts, center, radius, limit)
		what := fmt.Sprintf("query %d (%s, %v, r=%v, k=%d)", q, h.name, center, radius, limit)

		switch q % 3 {
		case 0: // NEARBY ... DISTANCE IDS: [cursor, [[id, distance], ...]]
			v, err := c.Do(ctx, "NEARBY", "fleet", "LIMIT", limit, "DISTANCE", "IDS", "POINT", center.Lat, center.Lng, radius).Slice()
			if err != nil {
				t.Fatalf("%s: NEARBY: %v", what, err)
			}
			items := v[1].([]any)
			if len(items) != len(want) {
				t.Fatalf("%s: NEARBY has %d drivers, brute force %d", what, len(items), len(want))
			}
			for i, it := range items {
				pair := it.([]any)
				dist, _ := strconv.ParseFloat(pair[1].(string), 64)
				if pair[0] != want[i].ID || dist != want[i].DistanceM {
					t.Fatalf("%s: NEARBY result %d is %v at %v m, brute force %s at %v m", what, i, pair[0], dist, want[i].ID, want[i].DistanceM)
				}
			}
		case 1: // GEOSEARCH ... WITHDIST
			locs, err := c.GeoSearchLocation(ctx, "fleet", &redis.GeoSearchLocationQuery{
				GeoSearchQuery: redis.GeoSearchQuery{Longitude: center.Lng, Latitude: center.Lat, Radius: radius, RadiusUnit: "m", Sort: "ASC", Count: limit},
				WithDist:       true,
			}).Result()
			if err != nil {
				t.Fatalf("%s: GEOSEARCH: %v", what, err)
			}
			if len(locs) != len(want) {
				t.Fatalf("%s: GEOSEARCH has %d drivers, brute force %d", what, len(locs), len(want))
			}
			for i, l := range locs {
				if l.Name != want[i].ID || math.Abs(l.Dist-want[i].DistanceM) > 1e-4 {
					t.Fatalf("%s: GEOSEARCH result %d is %s at %v m, brute force %s at %v m", what, i, l.Name, l.Dist, want[i].ID, want[i].DistanceM)
				}
			}
		case 2: // WITHIN CIRCLE, and INTERSECTS BOUNDS of a box around the centre
			v, err := c.Do(ctx, "WITHIN", "fleet", "LIMIT", limit, "IDS", "CIRCLE", center.Lat, center.Lng, radius).Slice()
			if err != nil {
				t.Fatalf("%s: WITHIN: %v", what, err)
			}
			if got := strs(v[1]); !slices.Equal(got, hitIDs(want)) {
				t.Fatalf("%s: WITHIN CIRCLE %v, brute force %v", what, got, hitIDs(want))
			}
			box := boxAround(center, min(radius, 20000))
			if box.MaxLng-box.MinLng > 180 || box.MinLng < -180 || box.MaxLng > 180 {
				continue // Tile38 boxes do not wrap
			}
			wantBox := bruteBox(pts, box, limit)
			v, err = c.Do(ctx, "INTERSECTS", "fleet", "LIMIT", limit, "IDS", "BOUNDS", box.MinLat, box.MinLng, box.MaxLat, box.MaxLng).Slice()
			if err != nil {
				if strings.Contains(err.Error(), "reaches") { // a polar box wider than the largest search
					continue
				}
				t.Fatalf("%s: INTERSECTS BOUNDS %+v: %v", what, box, err)
			}
			if got := strs(v[1]); !slices.Equal(got, wantBox) {
				t.Fatalf("%s: INTERSECTS BOUNDS %+v: %v, brute force %v", what, box, got, wantBox)
			}
		}
	}
}

type box struct{ MinLat, MinLng, MaxLat, MaxLng float64 }

// boxAround returns a latitude/longitude box of about halfM meters each
// side of p.
func boxAround(p geo.LatLng, halfM float64) box {
	dLat := halfM / geo.EarthRadiusM * 180 / math.Pi
	dLng := dLat / math.Max(math.Cos(p.Lat*math.Pi/180), 0.05)
	return box{math.Max(-90, p.Lat-dLat), p.Lng - dLng, math.Min(90, p.Lat+dLat), p.Lng + dLng}
}

// bruteBox is the oracle of a BOUNDS search: the limit drivers in the box
// nearest to its centre, ties by id.
func bruteBox(pts []geo.Point, b box, limit int) []string {
	c := geo.LatLng{Lat: (b.MinLat + b.MaxLat) / 2, Lng: (b.MinLng + b.MaxLng) / 2}
	var hits []geo.Hit
	for _, p := range pts {
		if p.Pos.Lat >= b.MinLat && p.Pos.Lat <= b.MaxLat && p.Pos.Lng >= b.MinLng && p.Pos.Lng <= b.MaxLng {
			hits = append(hits, geo.Hit{ID: p.ID, DistanceM: geo.DistanceM(c, p.Pos)})
		}
	}
	slices.SortFunc(hits, geo.CompareHits)
	return hitIDs(hits[:min(limit, len(hits))])
}

func hitIDs(h []geo.Hit) []string {
	ids := []string{}
	for _, x := range h {
		ids = append(ids, x.ID)
	}
	return ids
}

func strs(v any) []string {
	out := []string{}
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestBadInput: every malformed command gets an error reply naming the
// command, and changes nothing.
func TestBadInput(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	c := d.client(t)
	ctx := ctxT(t)
	if err := c.Do(ctx, "SET", "fleet", "keep", "POINT", 1, 1).Err(); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SET", "fleet"}, "wrong number of arguments for 'SET'"},
		{[]any{"SET", "fleet", "bad1", "POINT", "north", 1}, `SET: lat: "north" is not a finite number`},
		{[]any{"SET", "fleet", "bad1", "POINT", 1, "NaN"}, "SET: lon: \"NaN\" is not a finite number"},
		{[]any{"SET", "fleet", "bad1", "POINT", 91, 1}, "SET: position"},
		{[]any{"SET", "fleet", "bad1", "POINT", 1, 181}, "SET: position"},
		{[]any{"SET", "fleet", "bad1", "POINT", 1, 1, "extra", 1}, "SET: z"},
		{[]any{"SET", "fleet", huge, "POINT", 1, 1}, "SET: id: 1048576 bytes, at most 128"},
		{[]any{"SET", "fleet", "bad1", "FIELD", "speed", 1, "POINT", 1, 1}, "option \"FIELD\" is not supported"},
		{[]any{"SET", "fleet", "bad1", "OBJECT", "{}"}, "objects are not supported"},
		{[]any{"SET", "", "bad1", "POINT", 1, 1}, "SET: key: required"},
		{[]any{"SET", strings.Repeat("k", 65), "bad1", "POINT", 1, 1}, "SET: key: 65 bytes, at most 64"},
		{[]any{"SET", "fleet", "\xff\xfe", "POINT", 1, 1}, "SET: id: not valid UTF-8"},
		{[]any{"NEARBY", "fleet"}, "wrong number of arguments for 'NEARBY'"},
		{[]any{"NEARBY", "fleet", "LIMIT", 100000, "POINT", 1, 1, 100}, "NEARBY: LIMIT: must be within [1, 1000], got 100000"},
		{[]any{"NEARBY", "fleet", "LIMIT", -1, "POINT", 1, 1, 100}, "NEARBY: LIMIT: must be within [1, 1000]"},
		{[]any{"NEARBY", "fleet", "LIMIT", "1e9999", "POINT", 1, 1, 100}, "NEARBY: LIMIT: \"1e9999\" is not a whole number"},
		{[]any{"NEARBY", "fleet", "CURSOR", 900, "LIMIT", 200, "POINT", 1, 1, 100}, "at most 1000 drivers"},
		{[]any{"NEARBY", "fleet", "POINT", 1, 1, 0}, "NEARBY: radius_m: must be within (0, 100000]"},
		{[]any{"NEARBY", "fleet", "POINT", 1, 1, 1e9}, "NEARBY: radius_m"},
		{[]any{"NEARBY", "fleet", "POINT", -91, 1, 10}, "NEARBY: position"},
		{[]any{"NEARBY", "fleet", "POINT", 1, "Inf", 10}, "is not a finite number"},
		{[]any{"NEARBY", "fleet", "WHERE", "speed", 0, 1, "POINT", 1, 1, 10}, "NEARBY: option or area \"WHERE\" is not supported"},
		{[]any{"NEARBY", "fleet", "POINT", 1, 1, 10, 11}, "NEARBY: unexpected argument \"11\""},
		{[]any{"WITHIN", "fleet", "BOUNDS", 2, 2, 1, 1}, "BOUNDS: minlat 2, minlon 2 must not exceed"},
		{[]any{"WITHIN", "fleet", "BOUNDS", 0, 0, 10, 10}, "BOUNDS: the box reaches"},
		{[]any{"WITHIN", "fleet", "POINT", 1, 1, 10}, "WITHIN: option or area \"POINT\" is not supported"},
		{[]any{"INTERSECTS", "fleet", "CIRCLE", 1, 1}, "INTERSECTS: meters: missing"},
		{[]any{"GEOADD", "fleet", 1, 1}, "wrong number of arguments for 'GEOADD'"},
		{[]any{"GEOADD", "fleet", 1, 1, "ok1", 2, "x", "bad2"}, `GEOADD: latitude: "x" is not a finite number`},
		{[]any{"GEOADD", "fleet", 1, 1, "ok1", 200, 1, "bad2"}, "GEOADD: member 2 (\"bad2\"): position"},
		{[]any{"GEOADD", "fleet", "NX", 1, 1, "ok1"}, "GEOADD: option \"NX\" is not supported"},
		{[]any{"GEOSEARCH", "fleet", "FROMLONLAT", 1, 1, "BYRADIUS", 10, "parsec", "ASC"}, "GEOSEARCH: unit \"parsec\""},
		{[]any{"GEOSEARCH", "fleet", "FROMLONLAT", 1, 1, "BYRADIUS", 10, "m", "COUNT", 5000}, "GEOSEARCH: COUNT: must be within [1, 1000]"},
		{[]any{"GEOSEARCH", "fleet", "FROMMEMBER", "keep", "BYRADIUS", 10, "m", "ASC"}, "FROMMEMBER is not supported"},
		{[]any{"GEOSEARCH", "fleet", "FROMLONLAT", 1, 1, "BYRADIUS", 10, "m", "DESC"}, "DESC is not supported"},
		{[]any{"GEOSEARCH", "fleet", "FROMLONLAT", 1, 1, "BYRADIUS", 200, "km", "ASC"}, "GEOSEARCH: radius_m"},
		{[]any{"GET", "fleet", "keep", "WITHFIELDS"}, `GET: "WITHFIELDS" is not supported`},
		{[]any{"DEL", "fleet", "keep", "extra"}, "wrong number of arguments for 'DEL'"},
		{[]any{"SCAN", "fleet", "WHERE", "x", 1, 2}, `SCAN: option "WHERE" is not supported`},
		{[]any{"GEODIST", "fleet", "keep"}, "wrong number of arguments for 'GEODIST'"},
		{[]any{"GEORADIUS", "fleet", 1, 1, 10, "m"}, "GEORADIUS is not supported by geomatch"},
		{[]any{"FLUSHALL"}, `unknown command "FLUSHALL"; geomatch serves PING`},
		{[]any{"PING", 1, 2}, "wrong number of arguments for 'PING'"},
		{[]any{"OUTPUT", "xml"}, "OUTPUT: format \"xml\": want json or resp"},
	} {
		err := c.Do(ctx, tc.args...).Err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.80v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	// Nothing of the refused commands was applied: only "keep" is there
	// (not ok1 of the GEOADD refused for bad2, nor any bad1).
	v, err := c.Do(ctx, "NEARBY", "fleet", "IDS", "POINT", 1.5, 1.5, 100000).Slice()
	if err != nil || fmt.Sprint(v) != "[0 [keep]]" {
		t.Errorf("after the refused commands: %v, %v; want only keep", v, err)
	}
}

// TestGarbageFrames: malformed RESP gets an error reply, an oversized
// frame an error and a closed connection; the server keeps serving.
func TestGarbageFrames(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	for _, tc := range []struct {
		name, frame, want string
	}{
		{"bad multibulk length", "*x\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"bad bulk length", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length"},
		{"not a bulk", "*1\r\n:5\r\n", "-ERR Protocol error: expected '$'"},
		{"unbalanced quotes", "SET \"fleet\r\n", "-ERR Protocol error: unbalanced quotes"},
		{"inline unknown", "HELLO 3\r\n", `-ERR unknown command "HELLO"`},
		{"binary noise", "\x00\x01\x02\xff\r\n", "-ERR unknown command"},
		{"oversized frame", "*1\r\n$99999999\r\n" + strings.Repeat("a", 5<<20), "-ERR request larger than 4194304 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			go func() { _, _ = conn.Write([]byte(tc.frame)) }()
			line, err := bufio.NewReader(conn).ReadString('\n')
			if !strings.HasPrefix(line, tc.want) {
				t.Errorf("reply %q (%v), want %q", line, err, tc.want)
			}
		})
	}
	if got, err := d.client(t).Ping(ctxT(t)).Result(); err != nil || got != "PONG" {
		t.Errorf("PING after garbage: %q, %v", got, err)
	}
}

// TestRedisCLI drives the door with the real redis-cli.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		servertest.Missing(t, "redis-cli not found: apt-get install -y redis-tools")
	}
	d := startDoor(t, cluster.DevConfig{})
	host, port, _ := net.SplitHostPort(d.addr)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("SET", "fleet", "cab-1", "POINT", "33.5123", "-112.2693"); got != "OK" {
		t.Errorf("SET: %q", got)
	}
	if got := run("GEOADD", "fleet", "-112.2600", "33.5100", "cab-2"); got != "1" {
		t.Errorf("GEOADD: %q", got)
	}
	got := run("NEARBY", "fleet", "LIMIT", "5", "POINT", "33.5123", "-112.2693", "6000")
	want := "0\ncab-1\n{\"type\":\"Point\",\"coordinates\":[-112.2693,33.5123]}\ncab-2\n{\"type\":\"Point\",\"coordinates\":[-112.26,33.51]}"
	if got != want {
		t.Errorf("NEARBY:\n%s\nwant\n%s", got, want)
	}
	if got := run("GEOSEARCH", "fleet", "FROMLONLAT", "-112.2693", "33.5123", "BYRADIUS", "6", "km", "ASC", "COUNT", "1", "WITHDIST"); got != "cab-1\n0.0000" {
		t.Errorf("GEOSEARCH: %q", got)
	}
	if got := run("NEARBY", "fleet", "LIMIT", "0", "POINT", "1", "1"); !strings.Contains(got, "ERR NEARBY: LIMIT: must be within [1, 1000], got 0") {
		t.Errorf("NEARBY LIMIT 0: %q", got)
	}
	// Interactive use: commands on stdin, one connection.
	cmd := exec.Command(cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader("OUTPUT json\nWITHIN fleet COUNT CIRCLE 33.5123 -112.2693 6000\nPING\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli stdin: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `{"ok":true,"count":2,"cursor":0,"elapsed":`) || !strings.HasPrefix(lines[2], `{"ok":true,"ping":"pong"`) {
		t.Errorf("redis-cli stdin session:\n%s", out)
	}
}

// TestLimitsWithAuthOff: the per-client request rate of the gRPC API holds
// on the RESP door too, by client address.
func TestLimitsWithAuthOff(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{Router: router.Config{Limits: router.Limits{RequestsPerS: 0.001, RequestBurst: 2, UpdatesPerS: 0.001, UpdateBurst: 3}}})
	c := d.client(t)
	ctx := ctxT(t)
	for i := range 3 {
		err := c.Do(ctx, "NEARBY", "fleet", "POINT", 1, 1, 10).Err()
		if (i < 2) != (err == nil) {
			t.Errorf("search %d: %v", i, err)
		}
		if i == 2 && (err == nil || !strings.Contains(err.Error(), "rate limit: peer 127.0.0.1 may make")) {
			t.Errorf("third search: %v, want the rate limit", err)
		}
	}
	if err := c.GeoAdd(ctx, "fleet", &redis.GeoLocation{Name: "a", Latitude: 1, Longitude: 1}, &redis.GeoLocation{Name: "b", Latitude: 1, Longitude: 1}).Err(); err != nil {
		t.Errorf("GEOADD of 2 within the burst of 3: %v", err)
	}
	err := c.GeoAdd(ctx, "fleet", &redis.GeoLocation{Name: "c", Latitude: 1, Longitude: 1}, &redis.GeoLocation{Name: "d", Latitude: 1, Longitude: 1}).Err()
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("GEOADD beyond the burst: %v", err)
	}
}

// TestMaxConns: a connection beyond Config.MaxConns is answered with an
// error and closed; once one closes, the next gets in.
func TestMaxConns(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	srv, err := resp.New(resp.Config{MaxConns: 1}, d.Router, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		return conn, bufio.NewReader(conn)
	}
	first, r1 := dial()
	if _, err := first.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r1.ReadString('\n'); line != "+PONG\r\n" {
		t.Fatalf("first connection: %q, %v", line, err)
	}
	second, r2 := dial()
	if line, err := r2.ReadString('\n'); !strings.HasPrefix(line, "-ERR max number of clients reached (1)") {
		t.Errorf("second connection: %q, %v", line, err)
	}
	second.Close()
	first.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		third, r3 := dial()
		_, _ = third.Write([]byte("PING\r\n"))
		line, _ := r3.ReadString('\n')
		third.Close()
		if line == "+PONG\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection admitted after the first closed: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFrameHeaderBounds: a multibulk header announcing more arguments than
// MaxArgs is refused at once (redcon's reader would loop once per
// announced argument, for ever on "*1000000000000000000"), and framing
// split across reads is followed.
func TestFrameHeaderBounds(t *testing.T) {
	d := startDoor(t, cluster.DevConfig{})
	for _, frame := range []string{"*1000000000000000000\r\n", "*99999999999999999999999\r\n", "*1\r\n$1\r\na\r\n*40000\r\n"} {
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte(frame))
		rd := bufio.NewReader(conn)
		var line string
		for line == "" || strings.HasPrefix(line, "-ERR unknown") || strings.HasPrefix(line, "+") {
			if line, err = rd.ReadString('\n'); err != nil {
				break
			}
		}
		conn.Close()
		if !strings.HasPrefix(line, "-ERR Protocol error:") {
			t.Errorf("frame %q: reply %q (%v), want a protocol error", frame, line, err)
		}
	}
}
