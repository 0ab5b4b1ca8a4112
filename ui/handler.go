package ui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
	"github.com/geomatch/geomatch/ui/mapview"
)

// Prefix is where the map is served on the router's HTTP listener.
const Prefix = "/ui/"

//go:embed assets/index.html assets/live.js assets/live.css
var assets embed.FS

// sseKeepAlive is how often an idle event stream gets a comment line, so
// that proxies and browsers keep it open.
const sseKeepAlive = 15 * time.Second

// writeTimeout bounds one write to a browser: a stuck one is dropped.
const writeTimeout = 10 * time.Second

// Handler serves the map under Prefix.
type Handler struct {
	col     *Collector
	src     Cluster
	log     *slog.Logger
	mux     *http.ServeMux
	clients chan struct{} // slots of open event streams
}

// NewHandler returns the handler of the map fed by col, acting on src.
func NewHandler(col *Collector, src Cluster, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{col: col, src: src, log: log, mux: http.NewServeMux(), clients: make(chan struct{}, col.cfg.MaxClients)}
	h.mux.HandleFunc("GET /ui/{$}", h.asset("assets/index.html"))
	h.mux.HandleFunc("GET /ui/live.js", h.asset("assets/live.js"))
	h.mux.HandleFunc("GET /ui/live.css", h.asset("assets/live.css"))
	h.mux.HandleFunc("GET /ui/map.js", h.mapAsset("assets/map.js"))
	h.mux.HandleFunc("GET /ui/map.css", h.mapAsset("assets/map.css"))
	h.mux.HandleFunc("GET /ui/api/snapshot", h.snapshot)
	h.mux.HandleFunc("GET /ui/api/events", h.events)
	h.mux.HandleFunc("GET /ui/api/fences", h.fences)
	h.mux.HandleFunc("POST /ui/api/plan", h.plan)
	h.mux.HandleFunc("POST /ui/api/apply", h.apply)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) asset(name string) http.HandlerFunc {
	return serveFS(assets, name)
}

func (h *Handler) mapAsset(name string) http.HandlerFunc {
	return serveFS(mapview.Assets, name)
}

func serveFS(fs embed.FS, name string) http.HandlerFunc {
	b, err := fs.ReadFile(name)
	if err != nil {
		panic("ui: embedded asset missing: " + name) // the embed directives guarantee it
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if strings.HasSuffix(name, ".js") {
		ctype = "text/javascript; charset=utf-8"
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}

// latest waits (a little) for the first snapshot.
func (h *Handler) latest(r *http.Request) *published {
	for {
		p, ch := h.col.Latest()
		if p != nil {
			return p
		}
		select {
		case <-ch:
		case <-h.col.Done():
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

func (h *Handler) snapshot(w http.ResponseWriter, r *http.Request) {
	h.col.viewed()
	p := h.latest(r)
	if p == nil {
		httpError(w, http.StatusServiceUnavailable, "the shard map is stopping")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(p.full)
}

// events streams snapshots as server-sent events: "snapshot" first (every
// boundary), then "update" (boundaries of new shards only) on each
// publish. A client that misses one (a slow reader skips to the newest)
// gets an update lacking a boundary it never saw; the page then refetches
// the snapshot.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	select {
	case h.clients <- struct{}{}:
		defer func() { <-h.clients }()
	default:
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many open shard maps (%d): close one", cap(h.clients)))
		return
	}
	defer h.col.watch()()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if event != "" {
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
				return false
			}
		} else if _, err := w.Write(data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// Browsers reconnect a second after the stream ends (a router
	// restart); the first message of the new stream is a full snapshot.
	if !send("", []byte("retry: 1000\n\n")) {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	var last uint64
	for {
		p, ch := h.col.Latest()
		if p != nil && p.snap.Seq != last {
			kind, data := "update", p.update
			if last == 0 {
				kind, data = "snapshot", p.full
			}
			if !send(kind, data) {
				return
			}
			last = p.snap.Seq
		}
		select {
		case <-ch:
		case <-keep.C:
			if !send("", []byte(": keep-alive\n\n")) {
				return
			}
		case <-h.col.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// readAction checks an action call: same origin, JSON, bounded, a valid
// action. It answers the error itself and returns ok false.
func (h *Handler) readAction(w http.ResponseWriter, r *http.Request) (action, string, bool) {
	if !sameOrigin(r) {
		httpError(w, http.StatusForbidden, "origin: actions are taken from the map's own page only")
		return action{}, "", false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type: want application/json")
		return action{}, "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActionBytes+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "request: "+err.Error())
		return action{}, "", false
	}
	if len(body) > maxActionBytes {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request: more than %d bytes", maxActionBytes))
		return action{}, "", false
	}
	a, err := parseAction(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return action{}, "", false
	}
	token := ""
	if v := r.Header.Get("Authorization"); v != "" {
		t, ok := bearer(v)
		if !ok {
			httpError(w, http.StatusUnauthorized, "Authorization: want `Bearer <token>`")
			return action{}, "", false
		}
		token = t
	}
	return a, token, true
}

// plan answers the dry run of an action: which shown shards would change
// owner. It checks the caller's token as the action itself would (an
// admin GetRing), so a page without the right token learns it before it
// applies.
func (h *Handler) plan(w http.ResponseWriter, r *http.Request) {
	a, token, ok := h.readAction(w, r)
	if !ok {
		return
	}
	if _, err := h.src.Call(r.Context(), remoteAddr(r.RemoteAddr), token, geomatchv1.AdminService_GetRing_FullMethodName, &geomatchv1.GetRingRequest{}); err != nil {
		grpcError(w, err)
		return
	}
	m, _ := h.src.Ring()
	shown := map[shardmap.Cell]int64{}
	if p := h.latest(r); p != nil {
		for _, s := range p.snap.Shards {
			if c, err := membership.ParseCell(s.Cell); err == nil {
				shown[c] = s.Drivers
			}
		}
	}
	p, err := plan(m, a, shown)
	if err != nil {
		var ce *membership.ChangeError
		if errors.As(err, &ce) {
			code := http.StatusConflict
			if errors.Is(err, membership.ErrInvalid) {
				code = http.StatusBadRequest
			}
			httpError(w, code, ce.Error())
			return
		}
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// apply applies a planned action through the admin API, unless the ring
// moved since the plan was made.
func (h *Handler) apply(w http.ResponseWriter, r *http.Request) {
	a, token, ok := h.readAction(w, r)
	if !ok {
		return
	}
	if a.req.Epoch == 0 {
		httpError(w, http.StatusBadRequest, "epoch: required: the epoch of the plan being applied (plan first)")
		return
	}
	if m, _ := h.src.Ring(); m.Epoch() != a.req.Epoch {
		httpError(w, http.StatusConflict, fmt.Sprintf("epoch: the plan was made at ring epoch %d, the ring is at %d now: review the new plan", a.req.Epoch, m.Epoch()))
		return
	}
	resp, err := h.src.Call(r.Context(), remoteAddr(r.RemoteAddr), token, a.method, a.rpc)
	if err != nil {
		grpcError(w, err)
		return
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	h.log.Info("shard map action applied", "action", a.what, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// bearer reads an Authorization header's token.
func bearer(v string) (string, bool) { return auth.FromHeader(v) }

// sameOrigin refuses a request a page of another origin made (a
// cross-site form post while authentication is off): the Origin header,
// when the browser sends one, must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// httpStatus maps a gRPC status code to HTTP: the one place where it is.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

func grpcError(w http.ResponseWriter, err error) {
	s := status.Convert(err)
	writeJSON(w, httpStatus(s.Code()), map[string]string{"error": s.Message(), "code": s.Code().String()})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// remoteAddr is an HTTP client's address as a net.Addr.
type remoteAddr string

func (a remoteAddr) Network() string { return "tcp" }
func (a remoteAddr) String() string  { return string(a) }

var _ net.Addr = remoteAddr("")

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
