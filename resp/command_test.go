package resp

import (
	"strings"
	"testing"
)

func args(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want Request
	}{
		{"ping", Request{Kind: KindPing}},
		{"PING hello", Request{Kind: KindPing, Message: "hello", HasMessage: true}},
		{"AUTH tok", Request{Kind: KindAuth, Token: "tok"}},
		{"AUTH default tok", Request{Kind: KindAuth, Token: "tok"}},
		{"output JSON", Request{Kind: KindOutput, Format: FormatJSON, HasFormat: true}},
		{"OUTPUT", Request{Kind: KindOutput}},
		{"QUIT", Request{Kind: KindQuit}},
		{"SET fleet cab-1 POINT 33.5 -112.2", Request{Kind: KindSet, Key: "fleet", Points: []Point{{"cab-1", 33.5, -112.2}}}},
		{"set suv cab-1 point 33.5 -112.2 12", Request{Kind: KindSet, Key: "suv", Points: []Point{{"cab-1", 33.5, -112.2}}}},
		{"NEARBY fleet POINT 1 2", Request{Kind: KindNearby, Key: "fleet", Search: Search{Lat: 1, Lng: 2, RadiusM: 100_000, Limit: DefaultLimit}}},
		{"NEARBY fleet CURSOR 10 LIMIT 5 DISTANCE NOFIELDS IDS POINT 1 2 300", Request{Kind: KindNearby, Key: "fleet",
			Search: Search{Lat: 1, Lng: 2, RadiusM: 300, Limit: 5, Cursor: 10, Distance: true, Output: OutputIDs}}},
		{"WITHIN fleet COUNT CIRCLE 1 2 300", Request{Kind: KindWithin, Key: "fleet", Search: Search{Lat: 1, Lng: 2, RadiusM: 300, Limit: DefaultLimit, Output: OutputCount}}},
		{"INTERSECTS fleet POINTS BOUNDS 1 2 3 4", Request{Kind: KindIntersects, Key: "fleet",
			Search: Search{Shape: ShapeBounds, Bounds: Bounds{1, 2, 3, 4}, Limit: DefaultLimit, Output: OutputPoints}}},
		{"GEOADD fleet CH -73.9 40.7 a -73.8 40.6 b", Request{Kind: KindGeoAdd, Key: "fleet", Points: []Point{{"a", 40.7, -73.9}, {"b", 40.6, -73.8}}}},
		{"GEOSEARCH fleet FROMLONLAT -73.9 40.7 BYRADIUS 2 km ASC COUNT 10 ANY WITHCOORD WITHDIST", Request{Kind: KindGeoSearch, Key: "fleet",
			Search: Search{Lat: 40.7, Lng: -73.9, RadiusM: 2000, Limit: 10, UnitM: 1000, Unit: "KM", WithCoord: true, WithDist: true}}},
		{"geosearch fleet byradius 1 mi fromlonlat 1 2", Request{Kind: KindGeoSearch, Key: "fleet",
			Search: Search{Lat: 2, Lng: 1, RadiusM: 1609.34, Limit: DefaultLimit, UnitM: 1609.34, Unit: "MI"}}},
	} {
		got, err := Parse(args(tc.cmd))
		if err != nil {
			t.Errorf("%s: %v", tc.cmd, err)
			continue
		}
		if !equalRequest(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.cmd, got, tc.want)
		}
	}
}

func equalRequest(a, b Request) bool {
	if len(a.Points) != len(b.Points) {
		return false
	}
	for i := range a.Points {
		if a.Points[i] != b.Points[i] {
			return false
		}
	}
	a.Points, b.Points = nil, nil
	return a.Kind == b.Kind && a.Key == b.Key && a.Message == b.Message && a.HasMessage == b.HasMessage && a.Token == b.Token &&
		a.Format == b.Format && a.HasFormat == b.HasFormat && a.Search == b.Search
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ cmd, want string }{
		{"", "ERR empty command"},
		{"FOO bar", `ERR unknown command "FOO"; geomatch serves PING`},
		{"GEORADIUS fleet 1 1 10 m", "ERR GEORADIUS is not supported by geomatch"},
		{"GET fleet", "ERR wrong number of arguments for 'GET'"},
		{"SCAN fleet CURSOR 999 LIMIT 10", "ERR SCAN: CURSOR + LIMIT is 1009, at most 1000"},
		{"SET fleet", "ERR wrong number of arguments for 'SET'"},
		{"SET fleet a POINT 1", "ERR SET: lon: missing"},
		{"SET fleet a POINT 1 x", `ERR SET: lon: "x" is not a finite number`},
		{"SET fleet a POINT 1 2 3 4", `ERR SET: unexpected argument "4"`},
		{"SET fleet a EX 10 POINT 1 2", `ERR SET: option "EX" is not supported`},
		{"NEARBY fleet LIMIT 0 POINT 1 2", "ERR NEARBY: LIMIT: must be within [1, 1000], got 0"},
		{"NEARBY fleet LIMIT 1001 POINT 1 2", "ERR NEARBY: LIMIT: must be within [1, 1000], got 1001"},
		{"NEARBY fleet CURSOR 1000 LIMIT 1 POINT 1 2", "ERR NEARBY: CURSOR 1000 + LIMIT 1"},
		{"NEARBY fleet LIMIT 10", "ERR NEARBY: missing POINT lat lon [meters]"},
		{"NEARBY fleet CIRCLE 1 2 3", `ERR NEARBY: option or area "CIRCLE" is not supported`},
		{"WITHIN fleet DISTANCE CIRCLE 1 2 3", `ERR WITHIN: option or area "DISTANCE" is not supported`},
		{"WITHIN fleet BOUNDS 1 2 3", "ERR WITHIN: maxlon: missing"},
		{"GEOADD fleet 1 2 a 3", "ERR GEOADD: wrong number of arguments"},
		{"GEOADD fleet XX 1 2 a", `ERR GEOADD: option "XX" is not supported`},
		{"GEOSEARCH fleet FROMLONLAT 1 2 BYRADIUS 1 m FROMLONLAT 1 2", "ERR GEOSEARCH: exactly one of FROMMEMBER or FROMLONLAT"},
		{"GEOSEARCH fleet BYRADIUS 1 m ASC COUNT 1 WITHDIST", "ERR GEOSEARCH: exactly one of FROMMEMBER or FROMLONLAT"},
		{"GEOSEARCH fleet FROMLONLAT 1 2 ASC COUNT 1 WITHDIST", "ERR GEOSEARCH: exactly one of BYRADIUS or BYBOX"},
		{"GEOSEARCH fleet FROMLONLAT 1 2 BYBOX 1 1 m ASC", "ERR GEOSEARCH: BYBOX is not supported"},
	} {
		_, err := Parse(args(tc.cmd))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.cmd, err, tc.want)
		}
	}
	long := [][]byte{[]byte("SET"), []byte("fleet"), make([]byte, 1<<20), []byte("POINT"), []byte("1"), []byte("2")}
	if _, err := Parse(long); err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "1048576 bytes, at most 128") {
		t.Errorf("1 MB id: %v", err)
	}
	unknown := [][]byte{make([]byte, 1<<20)}
	if _, err := Parse(unknown); err == nil || len(err.Error()) > 400 {
		t.Errorf("1 MB command name: %.300v (want a short error)", err)
	}
}
