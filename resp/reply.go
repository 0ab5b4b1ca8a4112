package resp

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tidwall/redcon"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
)

// The reply writers append one command's reply to b. Tile38 commands (and
// PING, AUTH, OUTPUT) follow the connection's Format; the Redis GEO
// commands always answer in RESP, as Redis does.

// jsonOK starts a JSON reply.
const jsonOK = `{"ok":true`

// appendElapsed ends a JSON reply with Tile38's "elapsed" field.
func appendElapsed(j []byte, elapsed time.Duration) []byte {
	j = append(j, `,"elapsed":`...)
	j = appendJSONString(j, elapsed.String())
	return append(j, '}')
}

// AppendError appends an error reply: a RESP error, or in JSON Tile38's
// {"ok":false,"err":...} as a bulk string. msg starts with its code (ERR,
// NOAUTH, NOPERM); the JSON form leaves the code out, as Tile38 does.
func AppendError(b []byte, f Format, msg string, elapsed time.Duration) []byte {
	if f != FormatJSON {
		return redcon.AppendError(b, msg)
	}
	if i := indexByte(msg, ' '); i > 0 && isCode(msg[:i]) {
		msg = msg[i+1:]
	}
	j := append(make([]byte, 0, 48+len(msg)), `{"ok":false,"err":`...)
	j = appendJSONString(j, msg)
	return redcon.AppendBulk(b, appendElapsed(j, elapsed))
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// isCode reports whether s is an error code: upper-case letters only.
func isCode(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return s != ""
}

// AppendOK appends the reply of a command that only succeeds (SET, AUTH,
// OUTPUT json|resp, QUIT).
func AppendOK(b []byte, f Format, elapsed time.Duration) []byte {
	if f != FormatJSON {
		return redcon.AppendOK(b)
	}
	return redcon.AppendBulk(b, appendElapsed(append(make([]byte, 0, 48), jsonOK...), elapsed))
}

// AppendPong appends PING's reply: PONG, or the message given.
func AppendPong(b []byte, f Format, req *Request, elapsed time.Duration) []byte {
	if f != FormatJSON {
		if req.HasMessage {
			return redcon.AppendBulkString(b, req.Message)
		}
		return redcon.AppendString(b, "PONG")
	}
	j := append(make([]byte, 0, 64), jsonOK...)
	j = append(j, `,"ping":`...)
	if req.HasMessage {
		j = appendJSONString(j, req.Message)
	} else {
		j = append(j, `"pong"`...)
	}
	return redcon.AppendBulk(b, appendElapsed(j, elapsed))
}

// AppendOutput appends the reply of OUTPUT without an argument: the
// connection's format.
func AppendOutput(b []byte, f Format, elapsed time.Duration) []byte {
	if f != FormatJSON {
		return redcon.AppendBulkString(b, f.String())
	}
	j := append(make([]byte, 0, 64), jsonOK...)
	j = append(j, `,"output":"json"`...)
	return redcon.AppendBulk(b, appendElapsed(j, elapsed))
}

// AppendSearch appends the reply of a Tile38 NEARBY, WITHIN or INTERSECTS:
// found are the drivers of the answer (after the cursor), cursor the next
// cursor (0: no more).
//
// RESP: [cursor, [item, ...]], an item being [id, object] (OBJECTS, with
// DISTANCE [id, object, distance]), [id, [lat, lon]] (POINTS) or id (IDS,
// with DISTANCE [id, distance]); COUNT is the count alone. JSON:
// {"ok":true,"objects"|"points"|"ids":[...],"count":n,"cursor":c,"elapsed":...}.
func AppendSearch(b []byte, f Format, s *Search, found []*matcherv1.Neighbor, cursor int, elapsed time.Duration) []byte {
	if f == FormatJSON {
		return redcon.AppendBulk(b, appendSearchJSON(make([]byte, 0, 64+96*len(found)), s, found, cursor, elapsed))
	}
	if s.Output == OutputCount {
		return redcon.AppendInt(b, int64(len(found)))
	}
	b = redcon.AppendArray(b, 2)
	b = redcon.AppendInt(b, int64(cursor))
	b = redcon.AppendArray(b, len(found))
	var num [32]byte
	for _, n := range found {
		switch s.Output {
		case OutputIDs:
			if s.Distance {
				b = redcon.AppendArray(b, 2)
				b = redcon.AppendBulkString(b, n.GetDriverId())
				b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetDistanceM(), 'f', -1, 64))
				continue
			}
			b = redcon.AppendBulkString(b, n.GetDriverId())
			continue
		case OutputPoints:
			b = redcon.AppendArray(b, 2+boolInt(s.Distance))
			b = redcon.AppendBulkString(b, n.GetDriverId())
			b = redcon.AppendArray(b, 2)
			b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetLat(), 'f', -1, 64))
			b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetLng(), 'f', -1, 64))
		default:
			b = redcon.AppendArray(b, 2+boolInt(s.Distance))
			b = redcon.AppendBulkString(b, n.GetDriverId())
			var obj [96]byte
			b = redcon.AppendBulk(b, appendGeoJSONPoint(obj[:0], n.GetLat(), n.GetLng()))
		}
		if s.Distance {
			b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetDistanceM(), 'f', -1, 64))
		}
	}
	return b
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

func appendSearchJSON(j []byte, s *Search, found []*matcherv1.Neighbor, cursor int, elapsed time.Duration) []byte {
	j = append(j, jsonOK...)
	switch s.Output {
	case OutputObjects:
		j = append(j, `,"objects":[`...)
	case OutputPoints:
		j = append(j, `,"points":[`...)
	case OutputIDs:
		j = append(j, `,"ids":[`...)
	}
	if s.Output != OutputCount {
		for i, n := range found {
			if i > 0 {
				j = append(j, ',')
			}
			if s.Output == OutputIDs && !s.Distance {
				j = appendJSONString(j, n.GetDriverId())
				continue
			}
			j = append(j, `{"id":`...)
			j = appendJSONString(j, n.GetDriverId())
			switch s.Output {
			case OutputObjects:
				j = append(j, `,"object":`...)
				j = appendGeoJSONPoint(j, n.GetLat(), n.GetLng())
			case OutputPoints:
				j = append(j, `,"point":{"lat":`...)
				j = strconv.AppendFloat(j, n.GetLat(), 'f', -1, 64)
				j = append(j, `,"lon":`...)
				j = strconv.AppendFloat(j, n.GetLng(), 'f', -1, 64)
				j = append(j, '}')
			}
			if s.Distance {
				j = append(j, `,"distance":`...)
				j = strconv.AppendFloat(j, n.GetDistanceM(), 'f', -1, 64)
			}
			j = append(j, '}')
		}
		j = append(j, ']')
	}
	j = append(j, `,"count":`...)
	j = strconv.AppendInt(j, int64(len(found)), 10)
	j = append(j, `,"cursor":`...)
	j = strconv.AppendInt(j, int64(cursor), 10)
	return appendElapsed(j, elapsed)
}

// appendGeoJSONPoint appends {"type":"Point","coordinates":[lng,lat]}.
func appendGeoJSONPoint(j []byte, lat, lng float64) []byte {
	j = append(j, `{"type":"Point","coordinates":[`...)
	j = strconv.AppendFloat(j, lng, 'f', -1, 64)
	j = append(j, ',')
	j = strconv.AppendFloat(j, lat, 'f', -1, 64)
	return append(j, ']', '}')
}

// AppendGeoSearch appends GEOSEARCH's reply as Redis gives it: the
// members, or with WITHDIST or WITHCOORD an array per member of the
// member, its distance (in the query's unit, 4 decimals) and [lng, lat].
func AppendGeoSearch(b []byte, s *Search, found []*matcherv1.Neighbor) []byte {
	b = redcon.AppendArray(b, len(found))
	var num [32]byte
	for _, n := range found {
		if !s.WithDist && !s.WithCoord {
			b = redcon.AppendBulkString(b, n.GetDriverId())
			continue
		}
		b = redcon.AppendArray(b, 1+boolInt(s.WithDist)+boolInt(s.WithCoord))
		b = redcon.AppendBulkString(b, n.GetDriverId())
		if s.WithDist {
			b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetDistanceM()/s.UnitM, 'f', 4, 64))
		}
		if s.WithCoord {
			b = redcon.AppendArray(b, 2)
			b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetLng(), 'f', -1, 64))
			b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], n.GetLat(), 'f', -1, 64))
		}
	}
	return b
}

// appendJSONString appends s as a JSON string; bytes that are not UTF-8
// become U+FFFD.
func appendJSONString(j []byte, s string) []byte {
	const hex = "0123456789abcdef"
	j = append(j, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				j = append(j, '\\', c)
			case c < 0x20:
				j = append(j, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				j = append(j, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			j = append(j, `\ufffd`...)
		} else {
			j = append(j, s[i:i+size]...)
		}
		i += size
	}
	return append(j, '"')
}
