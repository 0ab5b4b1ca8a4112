package resp

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geomatch/geomatch/driver"
	"github.com/geomatch/geomatch/fleet"
	"github.com/geomatch/geomatch/internal/geo"
	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	"github.com/geomatch/geomatch/router"
)

// Config bounds what RESP clients may hold. Zero fields take the defaults
// of DefaultConfig; negative values are an error.
type Config struct {
	// MaxConns bounds the open connections; one more is answered with an
	// error and closed. Default 10000.
	MaxConns int
	// MaxRequestBytes bounds one command as it arrives (a frame, or the
	// part of a pipeline read at once); a connection sending more is
	// answered with an error and closed. Default 4 MiB.
	MaxRequestBytes int
	// IdleTimeout closes a connection that sends nothing for this long;
	// default 10 minutes.
	IdleTimeout time.Duration
	// Parallel is how many searches of one pipeline run at once; default
	// 16.
	Parallel int
	// MaxReplyBytes is how much of a pipeline's replies is buffered
	// before it is written out (the rest waits for the client to read);
	// default 1 MiB.
	MaxReplyBytes int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxConns: 10_000, MaxRequestBytes: 4 << 20, IdleTimeout: 10 * time.Minute, Parallel: 16, MaxReplyBytes: 1 << 20}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"MaxConns", &c.MaxConns, d.MaxConns}, {"MaxRequestBytes", &c.MaxRequestBytes, d.MaxRequestBytes}, {"Parallel", &c.Parallel, d.Parallel}, {"MaxReplyBytes", &c.MaxReplyBytes, d.MaxReplyBytes}} {
		if *f.v < 0 {
			return fmt.Errorf("resp config: %s is %d, want ≥ 0", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("resp config: IdleTimeout is %v, want ≥ 0", c.IdleTimeout)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	return nil
}

// Server is the RESP front door of one router. Create it with New and run
// Serve.
type Server struct {
	cfg   Config
	r     *router.Router
	fleet *fleet.Client
	log   *slog.Logger

	conns atomic.Int64
	clock updateClock
}

// updateClockSlots is the size of an updateClock's table: 512 KiB.
const updateClockSlots = 1 << 16

// updateClock gives updates their timestamps. RESP updates carry none,
// and the matchers apply a driver's updates in timestamp order (an older
// or equal one is ignored), so two updates of one driver within a
// millisecond need different ones. The clock keeps the last timestamp
// given per slot of a table indexed by a hash of the driver id: a driver's
// updates through this server get increasing timestamps, now or, within a
// millisecond, one past the last. Drivers sharing a slot only share that
// order; a slot runs ahead of the wall clock only while its drivers send
// more than one update a millisecond.
type updateClock struct {
	seed  maphash.Seed
	slots [updateClockSlots]atomic.Int64
}

// next returns the timestamp of a new update of driver id at now.
func (c *updateClock) next(id string, now time.Time) int64 {
	slot := &c.slots[maphash.String(c.seed, id)%updateClockSlots]
	ms := now.UnixMilli()
	for {
		last := slot.Load()
		ts := max(ms, last+1)
		if slot.CompareAndSwap(last, ts) {
			return ts
		}
	}
}

// New returns the RESP front door of r: its commands go through r's fleet
// client, token verification, access rules and limits.
func New(cfg Config, r *router.Router, log *slog.Logger) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("resp: a router is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &Server{cfg: cfg, r: r, fleet: r.Fleet(), log: log}
	srv.clock.seed = maphash.MakeSeed()
	return srv, nil
}

// session is one connection's state.
type session struct {
	caller router.Caller
	format Format
	frame  *frameConn
	quit   bool
	cmds   []redcon.Command
	reqs   []parsed
	out    []byte // replies of the pipeline being answered
}

// maxKeptReplyBuffer bounds the reply buffer a session keeps between
// pipelines.
const maxKeptReplyBuffer = 64 << 10

// parsed is one command of a pipeline.
type parsed struct {
	req Request
	err error
}

// Serve serves RESP on lis until ctx is done, then closes lis and every
// connection and returns once their commands have ended.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns sync.WaitGroup
	srv := redcon.NewServerNetwork(lis.Addr().Network(), lis.Addr().String(),
		func(conn redcon.Conn, cmd redcon.Command) { s.handle(ctx, conn, cmd) },
		func(conn redcon.Conn) bool {
			if n := s.conns.Add(1); n > int64(s.cfg.MaxConns) {
				s.conns.Add(-1)
				_, _ = conn.NetConn().Write(redcon.AppendError(nil, fmt.Sprintf("ERR max number of clients reached (%d)", s.cfg.MaxConns)))
				return false
			}
			conns.Add(1)
			fc, _ := conn.NetConn().(*frameConn)
			conn.SetContext(&session{caller: s.r.Anonymous(conn.RemoteAddr()), frame: fc})
			return true
		},
		func(conn redcon.Conn, err error) {
			s.conns.Add(-1)
			conns.Done()
		})
	srv.SetIdleClose(s.cfg.IdleTimeout)
	fl := &frameListener{Listener: lis, max: s.cfg.MaxRequestBytes}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()
	var err error
	select {
	case <-ctx.Done():
		lis.Close() // Serve returns, closing every connection
		err = <-served
	case err = <-served:
	}
	cancel()
	conns.Wait()
	if err != nil {
		return fmt.Errorf("resp: serve: %w", err)
	}
	return nil
}

// handle runs cmd and the commands pipelined behind it, and queues their
// replies in order.
func (s *Server) handle(ctx context.Context, conn redcon.Conn, cmd redcon.Command) {
	ss, _ := conn.Context().(*session)
	if ss == nil {
		conn.WriteError("ERR connection not set up")
		conn.Close()
		return
	}
	if ss.frame != nil {
		ss.frame.reset()
	}
	defer func() {
		// A bug must not take the router down: the connection gets an
		// error and ends; the stack goes to the log.
		if p := recover(); p != nil {
			s.log.Error("RESP command panicked; closing the connection", "remote", conn.RemoteAddr(), "panic", p, "stack", string(debug.Stack()))
			conn.WriteError("ERR internal error; the connection is closed")
			conn.Close()
		}
	}()
	ss.cmds = append(append(ss.cmds[:0], cmd), conn.ReadPipeline()...)
	if cap(ss.reqs) < len(ss.cmds) {
		ss.reqs = make([]parsed, len(ss.cmds))
	}
	ss.reqs = ss.reqs[:len(ss.cmds)]
	for i, c := range ss.cmds {
		ss.reqs[i].req, ss.reqs[i].err = Parse(c.Args)
	}
	clear(ss.cmds)
	w := redcon.BaseWriter(conn)
	out := ss.out[:0]
	for i := 0; i < len(ss.reqs) && !ss.quit; {
		j := s.segment(ss.reqs, i)
		out = s.run(ctx, ss, ss.reqs[i:j], out)
		i = j
		if len(out) >= s.cfg.MaxReplyBytes {
			conn.WriteRaw(out)
			out = out[:0]
			if err := w.Flush(); err != nil {
				break
			}
		}
	}
	conn.WriteRaw(out)
	clear(ss.reqs)
	if cap(out) <= maxKeptReplyBuffer {
		ss.out = out[:0]
	}
	if ss.quit {
		conn.Close()
	}
}

// class says how a command runs: alone (session commands and refused
// ones), with the other updates around it, or with the other searches.
func class(p *parsed) int {
	if p.err != nil {
		return 0
	}
	switch p.req.Kind {
	case KindSet, KindGeoAdd:
		return 1
	case KindNearby, KindWithin, KindIntersects, KindGeoSearch:
		return 2
	}
	return 0
}

// segment returns the end of the run of commands starting at i that run
// together: updates are sent together and answered in order; searches of
// a pipeline run Parallel at a time.
func (s *Server) segment(reqs []parsed, i int) int {
	c := class(&reqs[i])
	if c == 0 {
		return i + 1
	}
	j := i + 1
	for j < len(reqs) && class(&reqs[j]) == c && (c != 2 || j-i < s.cfg.Parallel) {
		j++
	}
	return j
}

// run runs one segment and appends its replies to out.
func (s *Server) run(ctx context.Context, ss *session, seg []parsed, out []byte) []byte {
	start := time.Now()
	switch class(&seg[0]) {
	case 1:
		return s.updates(ctx, ss, seg, out, start)
	case 2:
		return s.searches(ctx, ss, seg, out, start)
	}
	p := &seg[0]
	if p.err != nil {
		return AppendError(out, ss.format, p.err.Error(), time.Since(start))
	}
	req := &p.req
	switch req.Kind {
	case KindPing:
		return AppendPong(out, ss.format, req, time.Since(start))
	case KindQuit:
		ss.quit = true
		return AppendOK(out, ss.format, time.Since(start))
	case KindOutput:
		if !req.HasFormat {
			return AppendOutput(out, ss.format, time.Since(start))
		}
		ss.format = req.Format
		return AppendOK(out, ss.format, time.Since(start))
	case KindAuth:
		c, err := s.r.Authenticate(req.Token, time.Now())
		if err != nil {
			return AppendError(out, ss.format, replyError("AUTH", err), time.Since(start))
		}
		ss.caller = c
		return AppendOK(out, ss.format, time.Since(start))
	case KindGet, KindDel, KindScan, KindGeoPos, KindGeoDist:
		return s.byID(ctx, ss, req, out, start)
	}
	return AppendError(out, ss.format, "ERR internal: command not dispatched", time.Since(start))
}

// replyError is the error reply text of err from command name.
func replyError(name string, err error) string {
	var re *Error
	if errors.As(err, &re) {
		return re.Msg
	}
	st, ok := status.FromError(err)
	if !ok {
		return "ERR " + name + ": " + err.Error()
	}
	switch st.Code() {
	case codes.Unauthenticated:
		return "NOAUTH " + name + ": " + st.Message()
	case codes.PermissionDenied:
		return "NOPERM " + name + ": " + st.Message()
	case codes.FailedPrecondition:
		return "ERR " + name + ": " + st.Message()
	}
	return "ERR " + name + ": " + st.Message()
}

func (k Kind) String() string {
	switch k {
	case KindPing:
		return "PING"
	case KindAuth:
		return "AUTH"
	case KindOutput:
		return "OUTPUT"
	case KindQuit:
		return "QUIT"
	case KindSet:
		return "SET"
	case KindNearby:
		return "NEARBY"
	case KindWithin:
		return "WITHIN"
	case KindIntersects:
		return "INTERSECTS"
	case KindGeoAdd:
		return "GEOADD"
	case KindGeoSearch:
		return "GEOSEARCH"
	case KindGet:
		return "GET"
	case KindDel:
		return "DEL"
	case KindScan:
		return "SCAN"
	case KindGeoPos:
		return "GEOPOS"
	case KindGeoDist:
		return "GEODIST"
	}
	return "Kind(" + fmt.Sprint(uint8(k)) + ")"
}

// searchResult is the answer of one search.
type searchResult struct {
	found  []*matcherv1.Neighbor
	cursor int
	err    error
	done   time.Duration
}

// searches runs a segment of searches, at once when there are several,
// and appends their replies in order.
func (s *Server) searches(ctx context.Context, ss *session, seg []parsed, out []byte, start time.Time) []byte {
	var one [1]searchResult
	res := one[:]
	if len(seg) == 1 {
		r := &res[0]
		r.found, r.cursor, r.err = s.search(ctx, ss.caller, &seg[0].req)
		r.done = time.Since(start)
	} else {
		res = s.parallel(ctx, ss.caller, seg, start)
	}
	for i := range seg {
		req, r := &seg[i].req, &res[i]
		f := ss.format
		if req.Kind == KindGeoSearch {
			f = FormatRESP // Redis commands answer in RESP
		}
		switch {
		case r.err != nil:
			out = AppendError(out, f, replyError(req.Kind.String(), r.err), r.done)
		case req.Kind == KindGeoSearch:
			out = AppendGeoSearch(out, &req.Search, r.found)
		default:
			out = AppendSearch(out, f, &req.Search, r.found, r.cursor, r.done)
		}
	}
	return out
}

// parallel runs the searches of seg at once (seg is at most
// Config.Parallel long) and returns their results in order.
func (s *Server) parallel(ctx context.Context, c router.Caller, seg []parsed, start time.Time) []searchResult {
	res := make([]searchResult, len(seg))
	var wg sync.WaitGroup
	for i := range seg[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i+1]
			defer func() {
				if p := recover(); p != nil {
					s.log.Error("RESP search panicked", "panic", p, "stack", string(debug.Stack()))
					r.err = errf("%s: internal error", seg[i+1].req.Kind)
				}
			}()
			r.found, r.cursor, r.err = s.search(ctx, c, &seg[i+1].req)
			r.done = time.Since(start)
		}()
	}
	r := &res[0] // on this goroutine
	r.found, r.cursor, r.err = s.search(ctx, c, &seg[0].req)
	r.done = time.Since(start)
	wg.Wait()
	return res
}

// maxFetch bounds the drivers a search reads from the fleet: the
// matchers' own bound on one search (router.MaxLimit). A BOUNDS search
// reads up to that many from the circle around the box to find LIMIT of
// them inside it.
const maxFetch = router.MaxLimit

// search runs one search through the fleet client: the nearest drivers
// (available ones, as NearbyDrivers) within the circle, or within the
// rectangle of a BOUNDS search (the circle around it, filtered exactly),
// nearest first. It returns the page after the cursor and the next cursor
// (0 when the answer is complete).
func (s *Server) search(ctx context.Context, c router.Caller, req *Request) ([]*matcherv1.Neighbor, int, error) {
	if err := s.r.Admit(c, router.ActionNearby, 1); err != nil {
		return nil, 0, err
	}
	sr := &req.Search
	want := sr.Cursor + sr.Limit
	if sr.Shape == ShapeBounds {
		if err := circleAround(sr); err != nil {
			return nil, 0, err
		}
	}
	q, err := router.ValidateSearch(sr.Lat, sr.Lng, sr.RadiusM, want, VehicleClass(req.Key))
	if err != nil {
		return nil, 0, errf("%s: %v", req.Kind, err)
	}
	// One more than asked tells whether more follow (the next cursor).
	q.K = min(want+1, maxFetch)
	var found []*matcherv1.Neighbor
	maybeMore := false // at the matchers' bound: more may follow
	for {
		all, err := s.fleet.Nearby(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		if sr.Shape != ShapeBounds {
			found, maybeMore = all, len(all) == maxFetch
			break
		}
		found = found[:0]
		for _, n := range all {
			if sr.Bounds.Contains(n.GetLat(), n.GetLng()) {
				found = append(found, n)
			}
		}
		// The drivers of the box among the q.K nearest of the circle are
		// the nearest of the box: more than asked, or every driver of the
		// circle, is the exact answer.
		if len(found) > want || len(all) < q.K {
			break
		}
		if q.K >= maxFetch {
			if len(found) == want {
				maybeMore = true
				break
			}
			return nil, 0, errf("%s: BOUNDS: more than %d drivers around the box for %d in it; search a smaller box", req.Kind, maxFetch, want)
		}
		q.K = min(4*q.K, maxFetch)
	}
	next := 0
	if len(found) > want || maybeMore {
		next = want
		found = found[:min(want, len(found))]
	}
	if sr.Cursor >= len(found) {
		return nil, next, nil
	}
	return found[sr.Cursor:], next, nil
}

// circleAround sets the circle of a BOUNDS search: centred on the box,
// through its farthest corner (on the sphere, the farthest point of a
// latitude/longitude box no wider than 180° from its centre is a corner),
// plus a meter.
func circleAround(sr *Search) error {
	b := sr.Bounds
	for _, p := range []geo.LatLng{{Lat: b.MinLat, Lng: b.MinLng}, {Lat: b.MaxLat, Lng: b.MaxLng}} {
		if err := p.Validate(); err != nil {
			return errf("BOUNDS: %v", err)
		}
	}
	if b.MinLat > b.MaxLat || b.MinLng > b.MaxLng {
		return errf("BOUNDS: minlat %v, minlon %v must not exceed maxlat %v, maxlon %v", b.MinLat, b.MinLng, b.MaxLat, b.MaxLng)
	}
	if b.MaxLng-b.MinLng > 180 {
		return errf("BOUNDS: %v° of longitude: at most 180", b.MaxLng-b.MinLng)
	}
	c := geo.LatLng{Lat: (b.MinLat + b.MaxLat) / 2, Lng: (b.MinLng + b.MaxLng) / 2}
	r := 0.0
	for _, p := range []geo.LatLng{{Lat: b.MinLat, Lng: b.MinLng}, {Lat: b.MinLat, Lng: b.MaxLng}, {Lat: b.MaxLat, Lng: b.MinLng}, {Lat: b.MaxLat, Lng: b.MaxLng}} {
		r = math.Max(r, geo.DistanceM(c, p))
	}
	sr.Lat, sr.Lng, sr.RadiusM = c.Lat, c.Lng, r+1
	if sr.RadiusM > router.MaxRadiusM {
		return errf("BOUNDS: the box reaches %.0f m from its centre; at most %d m (the API's largest search)", r, router.MaxRadiusM)
	}
	return nil
}

// updateWait collects the results of the updates of one segment.
type updateWait struct {
	results   []fleet.Result
	remaining atomic.Int32
	done      chan struct{}
}

// Done implements fleet.Sink.
func (w *updateWait) Done(idx int32, r fleet.Result) {
	w.results[idx] = r
	if w.remaining.Add(-1) == 0 {
		close(w.done)
	}
}

// updates runs a segment of SET and GEOADD commands: each is checked whole
// (access, limits, validation: a refused command applies nothing), then
// every update of the segment is sent, in order, and the replies wait for
// the matchers' answers.
func (s *Server) updates(ctx context.Context, ss *session, seg []parsed, out []byte, start time.Time) []byte {
	ctx, cancel := context.WithTimeout(ctx, s.r.UpdateTimeout())
	defer cancel()
	deadline, _ := ctx.Deadline()
	errs := make([]error, len(seg))
	first := make([]int, len(seg)+1) // index of each command's first update
	var ups []fleet.Update
	now := time.Now()
	for i := range seg {
		first[i] = len(ups)
		req := &seg[i].req
		checked, err := s.checkUpdates(ss.caller, req, now)
		if err != nil {
			errs[i] = err
			continue
		}
		ups = append(ups, checked...)
	}
	first[len(seg)] = len(ups)
	w := &updateWait{results: make([]fleet.Result, len(ups)), done: make(chan struct{})}
	w.remaining.Store(int32(len(ups)))
	for i, u := range ups {
		s.fleet.Send(ctx, u, w, int32(i), deadline)
	}
	if len(ups) > 0 {
		select {
		case <-w.done:
		case <-ctx.Done():
			for i := range seg {
				if errs[i] == nil {
					errs[i] = errf("%s: no answer from the matchers within %v: %v", seg[i].req.Kind, s.r.UpdateTimeout(), ctx.Err())
				}
			}
		}
	}
	elapsed := time.Since(start)
	for i := range seg {
		req := &seg[i].req
		f := ss.format
		if req.Kind == KindGeoAdd {
			f = FormatRESP
		}
		if errs[i] != nil {
			out = AppendError(out, f, replyError(req.Kind.String(), errs[i]), elapsed)
			continue
		}
		accepted, refused, firstRefusal := 0, 0, ""
		for j := first[i]; j < first[i+1]; j++ {
			if r := w.results[j]; r.Outcome.Accepted() {
				accepted++
			} else {
				if refused == 0 {
					firstRefusal = fmt.Sprintf("%q: %s", ups[j].DriverID, refusal(r))
				}
				refused++
			}
		}
		switch {
		case refused > 0 && req.Kind == KindSet:
			out = AppendError(out, f, "ERR SET: "+firstRefusal, elapsed)
		case refused > 0:
			out = AppendError(out, f, fmt.Sprintf("ERR GEOADD: %d of %d members refused; first %s", refused, refused+accepted, firstRefusal), elapsed)
		case req.Kind == KindSet:
			out = AppendOK(out, f, elapsed)
		default:
			out = redcon.AppendInt(out, int64(accepted))
		}
	}
	return out
}

// checkUpdates admits and validates every update of one SET or GEOADD.
func (s *Server) checkUpdates(c router.Caller, req *Request, now time.Time) ([]fleet.Update, error) {
	if err := s.r.Admit(c, router.ActionUpdate, len(req.Points)); err != nil {
		return nil, err
	}
	field := "id"
	if req.Kind == KindGeoAdd {
		field = "member"
	}
	ups := make([]fleet.Update, len(req.Points))
	class := VehicleClass(req.Key)
	for i, p := range req.Points {
		if err := c.MayUpdate(field, p.ID); err != nil {
			return nil, err
		}
		u, err := router.ValidatePosition(router.PositionUpdate{DriverID: p.ID, Lat: p.Lat, Lng: p.Lng, TimestampMs: s.clock.next(p.ID, now), VehicleClass: class}, now)
		if err != nil {
			if req.Kind == KindGeoAdd {
				return nil, errf("GEOADD: member %d (%s): %v", i+1, shown([]byte(p.ID)), err)
			}
			return nil, errf("SET: %v", err)
		}
		ups[i] = u
	}
	return ups, nil
}

// refusal says why the fleet refused an update.
func refusal(r fleet.Result) string {
	switch r.Outcome {
	case driver.Stale:
		return "older than the last update applied for this driver"
	case driver.Full:
		if r.Msg == "" {
			return "the matcher holds as many drivers as it may"
		}
	case driver.Invalid:
		if r.Msg == "" {
			return "refused by the matcher as invalid"
		}
	}
	if r.Msg == "" {
		return r.Outcome.String()
	}
	return r.Outcome.String() + ": " + r.Msg
}

// frameListener wraps the connections it accepts in frameConns.
type frameListener struct {
	net.Listener
	max int
}

func (l *frameListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frameConn{Conn: c, max: l.max}, nil
}

// frameConn bounds the bytes read between two commands: a frame larger
// than max (or an endless one) gets an error reply and the connection
// ends, instead of growing the reader's buffer without bound.
type frameConn struct {
	net.Conn
	max  int
	read int // since the last command
	scan frameScan
}

// errTooLarge ends a connection whose request is beyond the bound.
var errTooLarge = errors.New("resp: request too large")

func (c *frameConn) reset() { c.read = 0 }

func (c *frameConn) Read(p []byte) (int, error) {
	if c.read >= c.max {
		_, _ = c.Conn.Write(redcon.AppendError(nil, fmt.Sprintf("ERR request larger than %d bytes: closing the connection", c.max)))
		return 0, errTooLarge
	}
	if len(p) > c.max-c.read {
		p = p[:c.max-c.read+1] // one byte over tells the bound was passed
	}
	n, err := c.Conn.Read(p)
	c.read += n
	if ferr := c.scan.feed(p[:n], int64(c.max)); ferr != nil {
		_, _ = c.Conn.Write(redcon.AppendError(nil, ferr.reply()))
		return 0, fmt.Errorf("resp: %w", ferr)
	}
	return n, err
}
