package resp

import (
	"context"
	"strconv"
	"time"

	"github.com/tidwall/redcon"

	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
)

// Commands that name drivers by id: Tile38's GET, DEL and SCAN, Redis's
// GEOPOS and GEODIST. Drivers are placed by position, so the server asks
// every matcher (fleet.Client.Lookup, Scan, Remove): these cost one call
// per matcher, not one, and are meant for tools and debugging rather than
// a dispatch loop.

// MaxByIDs bounds the members of one GEOPOS.
const MaxByIDs = 1000

// get reads GET key id [OBJECT|POINT] (Tile38; WITHFIELDS and the
// HASH/BOUNDS outputs are refused).
func (p *parser) get(req *Request) error {
	if len(p.args) < 2 {
		return p.arity()
	}
	if err := p.keyAndID(req); err != nil {
		return err
	}
	req.Search.Output = OutputObjects
	if p.more() {
		b, _ := p.next("output")
		switch {
		case eq(b, "OBJECT"):
		case eq(b, "POINT"):
			req.Search.Output = OutputPoints
		case eq(b, "WITHFIELDS"), eq(b, "HASH"), eq(b, "BOUNDS"):
			return errf("GET: %s is not supported: geomatch stores points only (GET key id [OBJECT|POINT])", shown(b))
		default:
			return errf("GET: unexpected argument %s: want OBJECT or POINT", shown(b))
		}
	}
	return p.done()
}

// del reads DEL key id (Tile38).
func (p *parser) del(req *Request) error {
	if len(p.args) != 2 {
		return p.arity()
	}
	return p.keyAndID(req)
}

// keyAndID reads a key and one driver id.
func (p *parser) keyAndID(req *Request) error {
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	id, err := p.text("id", router.MaxIDBytes)
	if err != nil {
		return err
	}
	req.IDs = []string{id}
	return nil
}

// scan reads SCAN key [CURSOR n] [LIMIT n] [NOFIELDS] [ASC]
// [COUNT|IDS|OBJECTS|POINTS] (Tile38; in id order).
func (p *parser) scan(req *Request) error {
	if len(p.args) < 1 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	s := &req.Search
	s.Limit = DefaultLimit
	for p.more() {
		b, _ := p.next("option")
		if ok, err := p.pageOption(s, b); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		switch {
		case eq(b, "ASC"):
		case eq(b, "DESC"), eq(b, "MATCH"), eq(b, "WHERE"), eq(b, "WHEREIN"), eq(b, "WHEREEVAL"):
			return errf("SCAN: option %s is not supported (SCAN key [CURSOR n] [LIMIT n] [COUNT|IDS|OBJECTS|POINTS])", shown(b))
		default:
			return errf("SCAN: unexpected argument %s", shown(b))
		}
	}
	if s.Cursor+s.Limit > router.MaxLimit {
		return errf("SCAN: CURSOR + LIMIT is %d, at most %d", s.Cursor+s.Limit, router.MaxLimit)
	}
	return nil
}

// geoPos reads GEOPOS key member [member ...] (Redis).
func (p *parser) geoPos(req *Request) error {
	if len(p.args) < 1 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	if len(p.args)-p.pos > MaxByIDs {
		return errf("GEOPOS: %d members, at most %d", len(p.args)-p.pos, MaxByIDs)
	}
	for p.more() {
		id, err := p.text("member", router.MaxIDBytes)
		if err != nil {
			return err
		}
		req.IDs = append(req.IDs, id)
	}
	return nil
}

// geoDist reads GEODIST key member1 member2 [M|KM|FT|MI] (Redis).
func (p *parser) geoDist(req *Request) error {
	if len(p.args) < 3 || len(p.args) > 4 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	for range 2 {
		id, err := p.text("member", router.MaxIDBytes)
		if err != nil {
			return err
		}
		req.IDs = append(req.IDs, id)
	}
	req.Search.UnitM, req.Search.Unit = 1, "m"
	if p.more() {
		b, _ := p.next("unit")
		found := false
		for _, u := range units {
			if eq(b, u.name) {
				req.Search.UnitM, found = u.m, true
			}
		}
		if !found {
			return errf("GEODIST: unsupported unit %s: use m, km, ft or mi", shown(b))
		}
	}
	return nil
}

// byID runs GET, DEL, SCAN, GEOPOS or GEODIST and appends its reply.
func (s *Server) byID(ctx context.Context, ss *session, req *Request, out []byte, start time.Time) []byte {
	f := ss.format
	if req.Kind == KindGeoPos || req.Kind == KindGeoDist {
		f = FormatRESP // Redis commands answer in RESP
	}
	fail := func(err error) []byte {
		return AppendError(out, f, replyError(req.Kind.String(), err), time.Since(start))
	}
	class := VehicleClass(req.Key)
	if req.Kind == KindDel {
		if err := s.r.Admit(ss.caller, router.ActionUpdate, 1); err != nil {
			return fail(err)
		}
		if err := ss.caller.MayUpdate("id", req.IDs[0]); err != nil {
			return fail(err)
		}
		held, err := s.fleet.Lookup(ctx, req.IDs)
		if err != nil {
			return fail(err)
		}
		d, ok := held[req.IDs[0]]
		if !ok || (class != "" && d.GetVehicleClass() != class) {
			return AppendDeleted(out, f, false, time.Since(start))
		}
		s.fleet.Remove(req.IDs[0])
		return AppendDeleted(out, f, true, time.Since(start))
	}
	if err := s.r.Admit(ss.caller, router.ActionNearby, 1); err != nil {
		return fail(err)
	}
	if req.Kind == KindScan {
		sr := &req.Search
		page, err := s.fleet.Scan(ctx, "", sr.Cursor+sr.Limit+1, class)
		if err != nil {
			return fail(err)
		}
		next := 0
		if len(page) > sr.Cursor+sr.Limit {
			page, next = page[:sr.Cursor+sr.Limit], sr.Cursor+sr.Limit
		}
		if sr.Cursor < len(page) {
			page = page[sr.Cursor:]
		} else {
			page = nil
		}
		return AppendSearch(out, f, sr, page, next, time.Since(start))
	}
	held, err := s.fleet.Lookup(ctx, req.IDs)
	if err != nil {
		return fail(err)
	}
	// A key other than the whole fleet is a collection of one class.
	find := func(id string) *matcherv1.Neighbor {
		d := held[id]
		if d == nil || (class != "" && d.GetVehicleClass() != class) {
			return nil
		}
		return d
	}
	switch req.Kind {
	case KindGet:
		return AppendGet(out, f, req.Search.Output, find(req.IDs[0]), time.Since(start))
	case KindGeoPos:
		found := make([]*matcherv1.Neighbor, len(req.IDs))
		for i, id := range req.IDs {
			found[i] = find(id)
		}
		return AppendGeoPos(out, found)
	default: // GEODIST
		a, b := find(req.IDs[0]), find(req.IDs[1])
		if a == nil || b == nil {
			return redcon.AppendNull(out)
		}
		m := geo.DistanceM(geo.LatLng{Lat: a.GetLat(), Lng: a.GetLng()}, geo.LatLng{Lat: b.GetLat(), Lng: b.GetLng()})
		return redcon.AppendBulk(out, strconv.AppendFloat(nil, m/req.Search.UnitM, 'f', 4, 64))
	}
}

// AppendGet appends Tile38's GET reply: the object as GeoJSON (a bulk
// string) or, for POINT, [lat, lon]; a driver not found is a null reply.
// JSON: {"ok":true,"object":{...}} or {"ok":true,"point":{"lat":..,"lon":..}},
// and {"ok":false,"err":"id not found"} for a driver not found.
func AppendGet(b []byte, f Format, o Output, d *matcherv1.Neighbor, elapsed time.Duration) []byte {
	if f == FormatJSON {
		if d == nil {
			return AppendError(b, f, "ERR id not found", elapsed)
		}
		j := append(make([]byte, 0, 128), jsonOK...)
		if o == OutputPoints {
			j = append(j, `,"point":{"lat":`...)
			j = strconv.AppendFloat(j, d.GetLat(), 'f', -1, 64)
			j = append(j, `,"lon":`...)
			j = strconv.AppendFloat(j, d.GetLng(), 'f', -1, 64)
			j = append(j, '}')
		} else {
			j = append(j, `,"object":`...)
			j = appendGeoJSONPoint(j, d.GetLat(), d.GetLng())
		}
		return redcon.AppendBulk(b, appendElapsed(j, elapsed))
	}
	if d == nil {
		return redcon.AppendNull(b)
	}
	if o == OutputPoints {
		var num [32]byte
		b = redcon.AppendArray(b, 2)
		b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], d.GetLat(), 'f', -1, 64))
		return redcon.AppendBulk(b, strconv.AppendFloat(num[:0], d.GetLng(), 'f', -1, 64))
	}
	var obj [96]byte
	return redcon.AppendBulk(b, appendGeoJSONPoint(obj[:0], d.GetLat(), d.GetLng()))
}

// AppendDeleted appends Tile38's DEL reply: 1 or 0 (RESP), or
// {"ok":true} (JSON; Tile38 answers the same whether the id existed).
func AppendDeleted(b []byte, f Format, deleted bool, elapsed time.Duration) []byte {
	if f == FormatJSON {
		return AppendOK(b, f, elapsed)
	}
	if deleted {
		return redcon.AppendInt(b, 1)
	}
	return redcon.AppendInt(b, 0)
}

// AppendGeoPos appends GEOPOS's reply as Redis gives it: per member,
// [lng, lat] or a null for a member not found.
func AppendGeoPos(b []byte, found []*matcherv1.Neighbor) []byte {
	b = redcon.AppendArray(b, len(found))
	var num [32]byte
	for _, d := range found {
		if d == nil {
			b = append(b, "*-1\r\n"...) // a null array, as Redis answers a missing member
			continue
		}
		b = redcon.AppendArray(b, 2)
		b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], d.GetLng(), 'f', -1, 64))
		b = redcon.AppendBulk(b, strconv.AppendFloat(num[:0], d.GetLat(), 'f', -1, 64))
	}
	return b
}
