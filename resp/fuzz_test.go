package resp

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/redcon"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
)

// FuzzParse feeds the command parser arbitrary arguments (split on
// spaces): it never panics, refuses with an ERR error naming no more than a
// short slice of the input, and what it accepts is within the documented
// bounds. The replies to an accepted search decode as RESP.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"PING", "AUTH x", "OUTPUT json", "SET fleet a POINT 1 2", "SET fleet a POINT 1 2 3",
		"NEARBY fleet LIMIT 5 DISTANCE POINT 1 2 300", "WITHIN fleet IDS CIRCLE 1 2 3", "INTERSECTS fleet BOUNDS 1 2 3 4",
		"GEOADD fleet 1 2 a 3 4 b", "GEOSEARCH fleet FROMLONLAT 1 2 BYRADIUS 3 km ASC COUNT 4 WITHDIST WITHCOORD",
		"NEARBY fleet CURSOR 999 LIMIT 1 POINT 1e308 -1e308 NaN", "GEOADD fleet CH CH 1 2 a",
		"GET fleet a", "DEL fleet a", "SCAN fleet LIMIT 5", "GEOPOS fleet a b", "GEODIST fleet a b km",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := bytes.Split([]byte(s), []byte(" "))
		req, err := Parse(a)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "ERR ") || len(msg) > 400 {
				t.Fatalf("error %q: want a short ERR message", msg)
			}
			return
		}
		if req.Kind < KindPing || req.Kind >= kindEnd {
			t.Fatalf("kind %d", req.Kind)
		}
		if req.Kind >= KindSet {
			if req.Key == "" || len(req.Key) > router.MaxVehicleClassBytes || !utf8.ValidString(req.Key) {
				t.Fatalf("key %q accepted", req.Key)
			}
		}
		for _, p := range req.Points {
			if p.ID == "" || len(p.ID) > router.MaxIDBytes || !utf8.ValidString(p.ID) || !finite(p.Lat, p.Lng) {
				t.Fatalf("point %+v accepted", p)
			}
		}
		sr := &req.Search
		switch req.Kind {
		case KindNearby, KindWithin, KindIntersects, KindGeoSearch:
			if sr.Limit < 1 || sr.Cursor < 0 || sr.Cursor+sr.Limit > router.MaxLimit {
				t.Fatalf("limit %d, cursor %d accepted", sr.Limit, sr.Cursor)
			}
			if !finite(sr.Lat, sr.Lng, sr.RadiusM, sr.Bounds.MinLat, sr.Bounds.MinLng, sr.Bounds.MaxLat, sr.Bounds.MaxLng) {
				t.Fatalf("search %+v accepted", sr)
			}
			found := []*matcherv1.Neighbor{{DriverId: "a\"\\\x00", Lat: 1, Lng: 2, DistanceM: 3}}
			for _, out := range [][]byte{
				AppendSearch(nil, FormatRESP, sr, found, 0, time.Millisecond),
				AppendSearch(nil, FormatJSON, sr, found, 0, time.Millisecond),
				AppendGeoSearch(nil, &Search{UnitM: 1, WithDist: sr.WithDist, WithCoord: sr.WithCoord}, found),
			} {
				if !decodes(out) {
					t.Fatalf("reply %q does not decode as one RESP value", out)
				}
			}
		}
	})
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// decodes reports whether b is exactly one RESP value, read by a
// small reader of the reply types.
func decodes(b []byte) bool {
	rest, ok := value(b)
	return ok && len(rest) == 0
}

// value reads one RESP value from b.
func value(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	i := bytes.Index(b, []byte("\r\n"))
	if i < 1 {
		return nil, false
	}
	head, rest := b[1:i], b[i+2:]
	switch b[0] {
	case '+', '-', ':':
		return rest, true
	case '$':
		n := atoi(head)
		if n < 0 || len(rest) < n+2 || string(rest[n:n+2]) != "\r\n" {
			return nil, false
		}
		return rest[n+2:], true
	case '*':
		n := atoi(head)
		if n < 0 {
			return nil, false
		}
		for range n {
			var ok bool
			if rest, ok = value(rest); !ok {
				return nil, false
			}
		}
		return rest, true
	}
	return nil, false
}

func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// FuzzFrame feeds raw bytes through redcon's frame reader and the command
// parser, as a connection does: no panic, and a refusal is a short ERR.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n", "PING\r\n", "*3\r\n$3\r\nSET\r\n$5\r\nfleet\r\n$1\r\na\r\n",
		"*7\r\n$6\r\nNEARBY\r\n$5\r\nfleet\r\n$5\r\nLIMIT\r\n$1\r\n5\r\n$5\r\nPOINT\r\n$1\r\n1\r\n$1\r\n2\r\n",
		"NEARBY fleet POINT 1 2 3\r\n", "*x\r\n", "*1\r\n$-5\r\n", "GEOADD \"fleet\" 1 2 'a b'\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The server scans the framing first (frameConn): what it refuses
		// never reaches redcon, whose reader loops once per announced
		// argument.
		var sc frameScan
		if sc.feed(raw, 4<<20) != nil {
			return
		}
		cmd, err := redcon.Parse(raw)
		if err != nil {
			return // redcon answers a protocol error itself
		}
		if _, err := Parse(cmd.Args); err != nil && (!strings.HasPrefix(err.Error(), "ERR ") || len(err.Error()) > 400) {
			t.Fatalf("error %q: want a short ERR message", err)
		}
	})
}
