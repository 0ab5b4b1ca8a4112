package resp

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/geomatch/geomatch/router"
)

// Kind is the command of a Request.
type Kind uint8

// The commands served.
const (
	KindPing Kind = iota + 1
	KindAuth
	KindOutput
	KindQuit
	KindSet        // Tile38 SET key id POINT lat lon
	KindNearby     // Tile38 NEARBY
	KindWithin     // Tile38 WITHIN
	KindIntersects // Tile38 INTERSECTS
	KindGeoAdd     // Redis GEOADD
	KindGeoSearch  // Redis GEOSEARCH
	KindGet        // Tile38 GET key id
	KindDel        // Tile38 DEL key id
	KindScan       // Tile38 SCAN key
	KindGeoPos     // Redis GEOPOS key member...
	KindGeoDist    // Redis GEODIST key member member [unit]

	kindEnd // one past the last command
)

// Format is how Tile38 commands are answered on a connection (OUTPUT).
type Format uint8

// The output formats.
const (
	// FormatRESP answers with RESP values, as Tile38 does for RESP clients.
	FormatRESP Format = iota
	// FormatJSON answers with one bulk string of JSON per command, as
	// Tile38 does after OUTPUT json.
	FormatJSON
)

func (f Format) String() string {
	if f == FormatJSON {
		return "json"
	}
	return "resp"
}

// Output is what a Tile38 search returns for each driver.
type Output uint8

// The search outputs.
const (
	OutputObjects Output = iota // GeoJSON points (the default)
	OutputPoints                // lat/lon pairs
	OutputIDs                   // ids only
	OutputCount                 // the number of drivers only
)

// Shape is the area of a Tile38 WITHIN or INTERSECTS search.
type Shape uint8

// The search shapes.
const (
	ShapeCircle Shape = iota // around (Lat, Lng) within RadiusM
	ShapeBounds              // the rectangle Bounds
)

// Bounds is a latitude/longitude rectangle, edges included.
type Bounds struct {
	MinLat, MinLng, MaxLat, MaxLng float64
}

// Contains reports whether (lat, lng) lies in b.
func (b Bounds) Contains(lat, lng float64) bool {
	return lat >= b.MinLat && lat <= b.MaxLat && lng >= b.MinLng && lng <= b.MaxLng
}

// Point is one position of a SET or GEOADD.
type Point struct {
	ID       string
	Lat, Lng float64
}

// Search is a NEARBY, WITHIN, INTERSECTS or GEOSEARCH.
type Search struct {
	// Lat, Lng and RadiusM are the circle searched (for a ShapeBounds
	// search, filled by the server from Bounds).
	Lat, Lng, RadiusM float64
	Shape             Shape
	Bounds            Bounds
	// Limit is the most drivers answered; Cursor how many nearer ones to
	// skip first (Tile38's CURSOR).
	Limit, Cursor int
	Output        Output
	// Distance adds each driver's distance (NEARBY DISTANCE).
	Distance bool
	// GEOSEARCH: the unit of the radius and of WITHDIST (meters per
	// unit, and its name), and the WITH options.
	UnitM               float64
	Unit                string
	WithCoord, WithDist bool
}

// Request is one parsed command. Only the fields of its Kind are set.
type Request struct {
	Kind Kind
	// Key is the Tile38 collection or Redis key: the vehicle class
	// searched or set (AllClassesKey: every class).
	Key string
	// Message is PING's optional argument (HasMessage).
	Message    string
	HasMessage bool
	// Token is AUTH's.
	Token string
	// Format is OUTPUT's (HasFormat; without it OUTPUT reports the
	// current format).
	Format    Format
	HasFormat bool
	// Points are SET's (one) or GEOADD's.
	Points []Point
	// Search is NEARBY's, WITHIN's, INTERSECTS' or GEOSEARCH's; SCAN's
	// cursor, limit and output; GET's output (objects or points);
	// GEODIST's unit.
	Search Search
	// IDs are the drivers GET, DEL, GEOPOS and GEODIST name.
	IDs []string
}

// Bounds of the commands, beyond those of the gRPC API (router.MaxLimit,
// router.MaxRadiusM, router.MaxIDBytes) they share.
const (
	// DefaultLimit is the LIMIT of a Tile38 search without one (Tile38's
	// own default), and the COUNT of a GEOSEARCH without one.
	DefaultLimit = 100
	// MaxCursor bounds CURSOR: the drivers skipped plus LIMIT may not
	// exceed router.MaxLimit.
	MaxCursor = router.MaxLimit
	// MaxGeoAddMembers bounds the members of one GEOADD, as the updates
	// of one UpdateLocations call.
	MaxGeoAddMembers = router.MaxUpdatesPerRequest
	// MaxArgs bounds the arguments of any command.
	MaxArgs = 3*MaxGeoAddMembers + 8
	// maxShown bounds how much of an argument an error message repeats.
	maxShown = 48
)

// AllClassesKey is the key that stands for the whole fleet: searches over
// it find drivers of every vehicle class, and SET or GEOADD into it keep
// the driver's class. Any other key is a vehicle class.
const AllClassesKey = "fleet"

// VehicleClass returns the vehicle class key stands for ("": every class).
func VehicleClass(key string) string {
	if key == AllClassesKey {
		return ""
	}
	return key
}

// Error is a command refused before it ran. Its text is the whole error
// reply, starting with its code (ERR, NOAUTH, NOPERM).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errf(format string, args ...any) error {
	return &Error{Msg: "ERR " + fmt.Sprintf(format, args...)}
}

// shown returns b for an error message: quoted, cut to maxShown bytes.
func shown(b []byte) string {
	if len(b) > maxShown {
		return strconv.Quote(string(b[:maxShown])) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}

// eq reports whether b is s, ASCII case-insensitively (s upper case).
func eq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// commands are the served commands by name, and the refused ones with why.
var commands = []struct {
	name string
	kind Kind
	why  string // refused: why
}{
	{"PING", KindPing, ""}, {"AUTH", KindAuth, ""}, {"OUTPUT", KindOutput, ""}, {"QUIT", KindQuit, ""},
	{"SET", KindSet, ""}, {"NEARBY", KindNearby, ""}, {"WITHIN", KindWithin, ""}, {"INTERSECTS", KindIntersects, ""},
	{"GEOADD", KindGeoAdd, ""}, {"GEOSEARCH", KindGeoSearch, ""},
	{"GET", KindGet, ""}, {"DEL", KindDel, ""}, {"SCAN", KindScan, ""},
	{"GEOPOS", KindGeoPos, ""}, {"GEODIST", KindGeoDist, ""},
	{"GEORADIUS", 0, "use GEOSEARCH key FROMLONLAT lng lat BYRADIUS r m ASC COUNT n"},
	{"GEORADIUSBYMEMBER", 0, "use GEOSEARCH key FROMLONLAT lng lat BYRADIUS r m ASC COUNT n"},
}

// Served lists the commands served, for error messages and docs.
const Served = "PING, AUTH, OUTPUT, QUIT, SET, GET, DEL, SCAN, NEARBY, WITHIN, INTERSECTS, GEOADD, GEOSEARCH, GEOPOS, GEODIST"

// Parse turns one command's arguments (the command name first) into a
// Request, or an *Error naming the command and what is wrong. It reads
// nothing but args and keeps no reference to them.
func Parse(args [][]byte) (Request, error) {
	if len(args) == 0 {
		return Request{}, errf("empty command")
	}
	if len(args) > MaxArgs {
		return Request{}, errf("%d arguments, at most %d", len(args), MaxArgs)
	}
	for _, c := range commands {
		if !eq(args[0], c.name) {
			continue
		}
		if c.kind == 0 {
			return Request{}, errf("%s is not supported by geomatch: %s", c.name, c.why)
		}
		p := parser{name: c.name, args: args[1:]}
		return p.parse(c.kind)
	}
	return Request{}, errf("unknown command %s; geomatch serves %s", shown(args[0]), Served)
}

// parser reads the arguments of one command.
type parser struct {
	name string
	args [][]byte
	pos  int
}

func (p *parser) more() bool { return p.pos < len(p.args) }

func (p *parser) peek() []byte { return p.args[p.pos] }

func (p *parser) arity() error {
	return errf("wrong number of arguments for '%s'", p.name)
}

func (p *parser) next(what string) ([]byte, error) {
	if !p.more() {
		return nil, errf("%s: %s: missing", p.name, what)
	}
	b := p.args[p.pos]
	p.pos++
	return b, nil
}

// float reads a finite number.
func (p *parser) float(what string) (float64, error) {
	b, err := p.next(what)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errf("%s: %s: %s is not a finite number", p.name, what, shown(b))
	}
	return f, nil
}

// count reads a whole number within [lo, hi].
func (p *parser) count(what string, lo, hi int) (int, error) {
	b, err := p.next(what)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, errf("%s: %s: %s is not a whole number", p.name, what, shown(b))
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, errf("%s: %s: must be within [%d, %d], got %d", p.name, what, lo, hi, n)
	}
	return int(n), nil
}

// text reads a string argument that must be UTF-8 of at most max bytes.
func (p *parser) text(what string, max int) (string, error) {
	b, err := p.next(what)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errf("%s: %s: required", p.name, what)
	}
	if len(b) > max {
		return "", errf("%s: %s: %d bytes, at most %d", p.name, what, len(b), max)
	}
	if !utf8.Valid(b) {
		return "", errf("%s: %s: not valid UTF-8", p.name, what)
	}
	return string(b), nil
}

func (p *parser) key() (string, error) { return p.text("key", router.MaxVehicleClassBytes) }

func (p *parser) done() error {
	if p.more() {
		return errf("%s: unexpected argument %s", p.name, shown(p.peek()))
	}
	return nil
}

func (p *parser) parse(k Kind) (Request, error) {
	req := Request{Kind: k}
	var err error
	switch k {
	case KindPing:
		if len(p.args) > 1 {
			return req, p.arity()
		}
		if len(p.args) == 1 {
			req.Message, req.HasMessage = string(p.args[0]), true
		}
		return req, nil
	case KindQuit:
		return req, nil
	case KindAuth:
		// AUTH token, or Redis 6's AUTH username token (the name is not
		// used: the token says who the caller is).
		if len(p.args) < 1 || len(p.args) > 2 {
			return req, p.arity()
		}
		req.Token = string(p.args[len(p.args)-1])
		return req, nil
	case KindOutput:
		if len(p.args) > 1 {
			return req, p.arity()
		}
		if len(p.args) == 1 {
			switch {
			case eq(p.args[0], "JSON"):
				req.Format = FormatJSON
			case eq(p.args[0], "RESP"):
				req.Format = FormatRESP
			default:
				return req, errf("OUTPUT: format %s: want json or resp", shown(p.args[0]))
			}
			req.HasFormat = true
		}
		return req, nil
	case KindSet:
		err = p.set(&req)
	case KindNearby, KindWithin, KindIntersects:
		err = p.tile38Search(&req)
	case KindGeoAdd:
		err = p.geoAdd(&req)
	case KindGeoSearch:
		err = p.geoSearch(&req)
	case KindGet:
		err = p.get(&req)
	case KindDel:
		err = p.del(&req)
	case KindScan:
		err = p.scan(&req)
	case KindGeoPos:
		err = p.geoPos(&req)
	case KindGeoDist:
		err = p.geoDist(&req)
	}
	return req, err
}

// set reads SET key id POINT lat lon [z].
func (p *parser) set(req *Request) error {
	if len(p.args) < 3 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	id, err := p.text("id", router.MaxIDBytes)
	if err != nil {
		return err
	}
	b, _ := p.next("object")
	switch {
	case eq(b, "POINT"):
	case eq(b, "FIELD"), eq(b, "EX"), eq(b, "NX"), eq(b, "XX"):
		return errf("SET: option %s is not supported: geomatch stores positions only (SET key id POINT lat lon)", shown(b))
	case eq(b, "OBJECT"), eq(b, "BOUNDS"), eq(b, "HASH"), eq(b, "STRING"):
		return errf("SET: %s objects are not supported: geomatch stores points only (SET key id POINT lat lon)", shown(b))
	default:
		return errf("SET: unexpected argument %s: want POINT lat lon", shown(b))
	}
	pt := Point{ID: id}
	if pt.Lat, err = p.float("lat"); err != nil {
		return err
	}
	if pt.Lng, err = p.float("lon"); err != nil {
		return err
	}
	if p.more() { // Tile38's optional z: read, checked, not kept
		if _, err := p.float("z"); err != nil {
			return err
		}
	}
	if err := p.done(); err != nil {
		return err
	}
	req.Points = []Point{pt}
	return nil
}

// tile38Search reads NEARBY key [CURSOR n] [LIMIT n] [DISTANCE] [NOFIELDS]
// [COUNT|IDS|OBJECTS|POINTS] POINT lat lon [meters], and WITHIN or
// INTERSECTS key [CURSOR n] [LIMIT n] [NOFIELDS] [COUNT|IDS|OBJECTS|POINTS]
// CIRCLE lat lon meters | BOUNDS minlat minlon maxlat maxlon.
func (p *parser) tile38Search(req *Request) error {
	if len(p.args) < 2 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	s := &req.Search
	s.Limit = DefaultLimit
	for {
		b, err := p.next("area")
		if err != nil {
			if req.Kind == KindNearby {
				return errf("NEARBY: missing POINT lat lon [meters]")
			}
			return errf("%s: missing CIRCLE lat lon meters or BOUNDS minlat minlon maxlat maxlon", p.name)
		}
		if ok, err := p.pageOption(s, b); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		switch {
		case eq(b, "DISTANCE") && req.Kind == KindNearby:
			s.Distance = true
		case eq(b, "POINT") && req.Kind == KindNearby:
			if s.Lat, err = p.float("lat"); err != nil {
				return err
			}
			if s.Lng, err = p.float("lon"); err != nil {
				return err
			}
			s.RadiusM = router.MaxRadiusM // Tile38: no radius, no bound
			if p.more() {
				if s.RadiusM, err = p.float("meters"); err != nil {
					return err
				}
			}
			return p.finishTile38(s)
		case eq(b, "CIRCLE") && req.Kind != KindNearby:
			if s.Lat, err = p.float("lat"); err != nil {
				return err
			}
			if s.Lng, err = p.float("lon"); err != nil {
				return err
			}
			if s.RadiusM, err = p.float("meters"); err != nil {
				return err
			}
			return p.finishTile38(s)
		case eq(b, "BOUNDS") && req.Kind != KindNearby:
			s.Shape = ShapeBounds
			for _, f := range []struct {
				v    *float64
				what string
			}{{&s.Bounds.MinLat, "minlat"}, {&s.Bounds.MinLng, "minlon"}, {&s.Bounds.MaxLat, "maxlat"}, {&s.Bounds.MaxLng, "maxlon"}} {
				if *f.v, err = p.float(f.what); err != nil {
					return err
				}
			}
			return p.finishTile38(s)
		case req.Kind == KindNearby:
			return errf("NEARBY: option or area %s is not supported (geomatch serves CURSOR, LIMIT, DISTANCE, NOFIELDS, COUNT, IDS, OBJECTS, POINTS and POINT lat lon [meters])", shown(b))
		default:
			return errf("%s: option or area %s is not supported (geomatch serves CURSOR, LIMIT, NOFIELDS, COUNT, IDS, OBJECTS, POINTS, CIRCLE lat lon meters and BOUNDS minlat minlon maxlat maxlon)", p.name, shown(b))
		}
	}
}

// pageOption reads b if it is one of the options Tile38's searches and
// SCAN share (CURSOR n, LIMIT n, NOFIELDS, COUNT|IDS|OBJECTS|POINTS), and
// reports whether it was.
func (p *parser) pageOption(s *Search, b []byte) (bool, error) {
	var err error
	switch {
	case eq(b, "CURSOR"):
		s.Cursor, err = p.count("CURSOR", 0, MaxCursor)
	case eq(b, "LIMIT"):
		s.Limit, err = p.count("LIMIT", 1, router.MaxLimit)
	case eq(b, "NOFIELDS"):
	case eq(b, "OBJECTS"):
		s.Output = OutputObjects
	case eq(b, "POINTS"):
		s.Output = OutputPoints
	case eq(b, "IDS"):
		s.Output = OutputIDs
	case eq(b, "COUNT"):
		s.Output = OutputCount
	default:
		return false, nil
	}
	return true, err
}

func (p *parser) finishTile38(s *Search) error {
	if err := p.done(); err != nil {
		return err
	}
	if s.Cursor+s.Limit > router.MaxLimit {
		return errf("%s: CURSOR %d + LIMIT %d: at most %d drivers into the answer", p.name, s.Cursor, s.Limit, router.MaxLimit)
	}
	return nil
}

// geoAdd reads GEOADD key [CH] lng lat member [lng lat member ...].
func (p *parser) geoAdd(req *Request) error {
	if len(p.args) < 4 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	for p.more() {
		b := p.peek()
		switch {
		case eq(b, "CH"):
			p.pos++
			continue
		case eq(b, "NX"), eq(b, "XX"):
			return errf("GEOADD: option %s is not supported", shown(b))
		}
		break
	}
	rest := len(p.args) - p.pos
	if rest == 0 || rest%3 != 0 {
		return errf("GEOADD: wrong number of arguments: want lng lat member triples after the key")
	}
	if rest/3 > MaxGeoAddMembers {
		return errf("GEOADD: %d members, at most %d per command", rest/3, MaxGeoAddMembers)
	}
	req.Points = make([]Point, 0, rest/3)
	for p.more() {
		var pt Point
		if pt.Lng, err = p.float("longitude"); err != nil {
			return err
		}
		if pt.Lat, err = p.float("latitude"); err != nil {
			return err
		}
		if pt.ID, err = p.text("member", router.MaxIDBytes); err != nil {
			return err
		}
		req.Points = append(req.Points, pt)
	}
	return nil
}

// units are GEOSEARCH's radius units in meters.
var units = []struct {
	name string
	m    float64
}{{"M", 1}, {"KM", 1000}, {"FT", 0.3048}, {"MI", 1609.34}}

// geoSearch reads GEOSEARCH key FROMLONLAT lng lat BYRADIUS radius
// m|km|ft|mi [ASC] [COUNT n [ANY]] [WITHCOORD] [WITHDIST].
func (p *parser) geoSearch(req *Request) error {
	if len(p.args) < 7 {
		return p.arity()
	}
	var err error
	if req.Key, err = p.key(); err != nil {
		return err
	}
	s := &req.Search
	s.Limit = DefaultLimit
	var from, by bool
	for p.more() {
		b, _ := p.next("option")
		switch {
		case eq(b, "FROMLONLAT"):
			if from {
				return errf("GEOSEARCH: exactly one of FROMMEMBER or FROMLONLAT can be specified")
			}
			from = true
			if s.Lng, err = p.float("longitude"); err != nil {
				return err
			}
			if s.Lat, err = p.float("latitude"); err != nil {
				return err
			}
		case eq(b, "BYRADIUS"):
			if by {
				return errf("GEOSEARCH: exactly one of BYRADIUS or BYBOX can be specified")
			}
			by = true
			r, err := p.float("radius")
			if err != nil {
				return err
			}
			u, err := p.next("unit")
			if err != nil {
				return err
			}
			known := false
			for _, x := range units {
				if eq(u, x.name) {
					s.UnitM, s.Unit, known = x.m, x.name, true
				}
			}
			if !known {
				return errf("GEOSEARCH: unit %s: want m, km, ft or mi", shown(u))
			}
			s.RadiusM = r * s.UnitM
		case eq(b, "ASC"):
		case eq(b, "COUNT"):
			if s.Limit, err = p.count("COUNT", 1, router.MaxLimit); err != nil {
				return err
			}
			if p.more() && eq(p.peek(), "ANY") {
				p.pos++ // the nearest are the answer anyway
			}
		case eq(b, "WITHCOORD"):
			s.WithCoord = true
		case eq(b, "WITHDIST"):
			s.WithDist = true
		case eq(b, "FROMMEMBER"):
			return errf("GEOSEARCH: FROMMEMBER is not supported (it needs a lookup by id the matcher fleet does not offer); use FROMLONLAT")
		case eq(b, "BYBOX"):
			return errf("GEOSEARCH: BYBOX is not supported; use BYRADIUS, or Tile38's WITHIN key BOUNDS")
		case eq(b, "DESC"):
			return errf("GEOSEARCH: DESC is not supported: answers are nearest first (ASC)")
		case eq(b, "WITHHASH"):
			return errf("GEOSEARCH: WITHHASH is not supported")
		case eq(b, "STORE"), eq(b, "STOREDIST"):
			return errf("GEOSEARCH: %s is not supported", shown(b))
		default:
			return errf("GEOSEARCH: unexpected argument %s", shown(b))
		}
	}
	if !from {
		return errf("GEOSEARCH: exactly one of FROMMEMBER or FROMLONLAT can be specified")
	}
	if !by {
		return errf("GEOSEARCH: exactly one of BYRADIUS or BYBOX can be specified")
	}
	return nil
}
