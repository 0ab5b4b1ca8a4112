package index

import (
	"math"
	"strconv"
	"testing"

	"github.com/geomatch/geomatch/internal/geo"
)

// fuzzRegion maps bytes to positions on a small grid, so fuzzed driver sets
// have ties, duplicates and shard borders, in the awkward places too.
type fuzzRegion struct {
	center geo.LatLng
	step   float64 // degrees per byte step
	res    int     // shard resolution
}

var fuzzRegions = []fuzzRegion{
	{geo.LatLng{Lat: 40.75, Lng: -73.98}, 0.0005, 8},
	{geo.LatLng{Lat: -16.5, Lng: 180}, 0.002, 6},
	{geo.LatLng{Lat: 89.97, Lng: 0}, 0.0003, 7},
	{geo.LatLng{Lat: -89.97, Lng: 90}, 0.0003, 7},
}

func (fr fuzzRegion) at(a, b byte) geo.LatLng {
	lngStep := fr.step
	if math.Abs(fr.center.Lat) > 89 {
		lngStep = 360.0 / 256 // around the pole: the whole circle
	}
	return geo.LatLng{
		Lat: clampLat(fr.center.Lat + float64(int(a)-128)*fr.step),
		Lng: wrapLng(fr.center.Lng + float64(int(b)-128)*lngStep),
	}
}

// FuzzNearbyMatchesBrute decodes a small driver set and a query from bytes
// and compares Nearby with geo.NearestBrute. Layout: region, query lat, query
// lng, radius, k, filter; then 4 bytes per update: driver, lat, lng,
// attributes (status, class, remove).
func FuzzNearbyMatchesBrute(f *testing.F) {
	f.Add([]byte{0, 128, 128, 40, 3, 0, 1, 128, 128, 0, 2, 128, 129, 1, 3, 128, 128, 2})
	f.Add([]byte{1, 128, 0, 200, 5, 0, 1, 128, 255, 0, 2, 128, 1, 0, 3, 130, 0, 5, 1, 128, 1, 0})
	f.Add([]byte{2, 255, 0, 90, 9, 16, 1, 255, 64, 0, 2, 250, 192, 1, 3, 255, 0, 6, 4, 254, 128, 0})
	f.Add([]byte{3, 0, 0, 255, 255, 3, 1, 0, 0, 1, 2, 0, 128, 1, 1, 1, 0, 64})
	f.Fuzz(checkFuzzInput)
}

func checkFuzzInput(t *testing.T, data []byte) {
	if len(data) < 6 {
		return
	}
	const maxUpdates = 64 // small sets keep executions and minimization fast
	if len(data) > 6+4*maxUpdates {
		data = data[:6+4*maxUpdates]
	}
	fr := fuzzRegions[int(data[0])%len(fuzzRegions)]
	q := fr.at(data[1], data[2])
	radius := math.Pow(float64(data[3])/255, 2) * 50_000
	k := 1 + int(data[4])%40
	filter := Filter{Status: Status(data[5] % 6), VehicleClass: ""}
	if filter.Status == 5 { // not a status: use the byte for a class
		filter.Status = StatusUnspecified
		filter.VehicleClass = testClasses[int(data[5]>>3)%len(testClasses)]
	}
	ix, _ := newTestIndex(t, 0, 0)
	m := model{}
	for i, rest := 0, data[6:]; len(rest) >= 4; i, rest = i+1, rest[4:] {
		id := "d" + strconv.Itoa(int(rest[0]%16))
		attr := rest[3]
		if attr&0xC0 == 0xC0 {
			if ix.Remove(id) != (m[id].ID != "") {
				t.Fatalf("Remove(%s) disagrees with the model", id)
			}
			delete(m, id)
			continue
		}
		p := fr.at(rest[1], rest[2])
		u := Update{
			ID:           id,
			Pos:          p,
			TimestampMs:  int64(i + 1),
			Status:       Status(attr % 5),
			VehicleClass: testClasses[int(attr>>3)%len(testClasses)],
			Shard:        cellOf(p, fr.res),
		}
		if r := apply1(ix, u); r.Outcome != OutcomeApplied {
			t.Fatalf("update %d: %v", i, r.Outcome)
		}
		d, live := m[id]
		if !live || u.Status != StatusUnspecified {
			d.Status = u.Status
		}
		if d.Status == StatusUnspecified {
			d.Status = StatusAvailable
		}
		m[id] = Driver{ID: id, Pos: p, TimestampMs: u.TimestampMs, Status: d.Status, VehicleClass: u.VehicleClass, Shard: u.Shard}
	}
	got := ix.Nearby(q, radius, k, shardCells(ix), filter, nil)
	if diff := sameAnswer(m, got, m.brute(q, radius, k, filter)); diff != "" {
		t.Fatalf("q=%v r=%v k=%d f=%+v: %s", q, radius, k, filter, diff)
	}
}
