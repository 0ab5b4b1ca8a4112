package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/geomatch/geomatch/internal/consultest"
	"github.com/geomatch/geomatch/internal/geo"
	"github.com/geomatch/geomatch/internal/identity"
	"github.com/geomatch/geomatch/internal/redistest"
	"github.com/geomatch/geomatch/internal/tlsconfig"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// composeFile is the part of a Compose file the test runs.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image           string                      `yaml:"image"`
	Build           any                         `yaml:"build"`
	Command         []string                    `yaml:"command"`
	Environment     map[string]string           `yaml:"environment"`
	Ports           []string                    `yaml:"ports"`
	DependsOn       map[string]composeCondition `yaml:"depends_on"`
	StopGracePeriod string                      `yaml:"stop_grace_period"`
	Volumes         []string                    `yaml:"volumes"`
}

type composeCondition struct {
	Condition string `yaml:"condition"`
}

// geomatch reports whether the service runs the geomatch image.
func (s composeService) geomatch() bool {
	return s.Build != nil || strings.Contains(s.Image, "geomatch")
}

// grace is the service's stop_grace_period (Compose's default: 10 s).
func (s composeService) grace(t *testing.T, name string) time.Duration {
	if s.StopGracePeriod == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(s.StopGracePeriod)
	if err != nil {
		t.Fatalf("service %s: stop_grace_period: %v", name, err)
	}
	return d
}

// loadCompose reads a Compose file and interpolates the values the test
// uses with env, as `docker compose` would with the shell's environment.
func loadCompose(t *testing.T, path string, env map[string]string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v (commands must be lists, environments maps)", path, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s: no services", path)
	}
	for name, s := range f.Services {
		in := func(v string) string {
			out, err := interpolate(v, env)
			if err != nil {
				t.Fatalf("service %s: %v", name, err)
			}
			return out
		}
		s.Image = in(s.Image)
		for i := range s.Command {
			s.Command[i] = in(s.Command[i])
		}
		for k, v := range s.Environment {
			s.Environment[k] = in(v)
		}
		for i := range s.Ports {
			s.Ports[i] = in(s.Ports[i])
		}
		f.Services[name] = s
	}
	return f
}

var interpolation = regexp.MustCompile(`\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)`)

// interpolate substitutes Compose variables: $$, $NAME, ${NAME},
// ${NAME:-default}, ${NAME-default}, ${NAME:?error} and ${NAME?error}.
func interpolate(s string, env map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		expr := strings.TrimPrefix(m, "$")
		expr = strings.TrimSuffix(strings.TrimPrefix(expr, "{"), "}")
		name, op, arg := expr, "", ""
		if i := strings.IndexAny(expr, ":-?"); i >= 0 {
			name, op = expr[:i], expr[i:]
			for _, o := range []string{":-", ":?", "-", "?"} {
				if strings.HasPrefix(op, o) {
					op, arg = o, op[len(o):]
					break
				}
			}
		}
		v, set := env[name]
		switch op {
		case "":
			return v
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if !set || (op == ":?" && v == "") {
				err = fmt.Errorf("variable %s is required: %s", name, arg)
			}
		default:
			err = fmt.Errorf("unsupported interpolation %s", m)
		}
		return v
	})
	return out, err
}

// loopback runs a Compose topology on one machine: each geomatch service
// gets a loopback address of its own (127.0.0.10, .11, ...), each port a
// service listens on a free port there, and the consul and redis services
// are stood in for by real servers the test started.
type loopback struct {
	t        *testing.T
	ips      map[string]string // geomatch service → its loopback IP
	ports    map[string]string // "service:port" → free host:port on its IP
	external map[string]string // "consul:8500" → the stand-in's address
}

var hostPort = regexp.MustCompile(`^(\[[0-9A-Fa-f:]*\]|[A-Za-z0-9_.\-]*):([0-9]+)$`)

// addr returns where the service's port is on this machine.
func (l *loopback) addr(service, port string) string {
	l.t.Helper()
	key := service + ":" + port
	if a, ok := l.external[key]; ok {
		return a
	}
	if a, ok := l.ports[key]; ok {
		return a
	}
	ip, ok := l.ips[service]
	if !ok {
		l.t.Fatalf("%s: no such service, or none the test stands in for", key)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		l.t.Fatalf("no free port on %s (%s): %v", ip, key, err)
	}
	a := lis.Addr().String()
	lis.Close()
	l.ports[key] = a
	return a
}

// value maps the addresses in a flag or environment value of service
// self: "host:port" where host is a service name, and ":port" or
// "0.0.0.0:port" (self). Lists of addresses and id=address pairs, as in
// --peers, are mapped element by element.
func (l *loopback) value(self, v string) string {
	l.t.Helper()
	parts := strings.Split(v, ",")
	for i, part := range parts {
		prefix := ""
		if j := strings.LastIndex(part, "="); j >= 0 {
			prefix, part = part[:j+1], part[j+1:]
		}
		m := hostPort.FindStringSubmatch(part)
		if m == nil {
			continue
		}
		host, port := m[1], m[2]
		switch host {
		case "", "0.0.0.0", "[::]", "localhost", "127.0.0.1":
			host = self
		}
		parts[i] = prefix + l.addr(host, port)
	}
	return strings.Join(parts, ",")
}

// command maps the addresses in a service's command and environment.
func (l *loopback) command(name string, s composeService) ([]string, map[string]string) {
	args := make([]string, len(s.Command))
	for i, a := range s.Command {
		if flag, val, ok := strings.Cut(a, "="); ok && strings.HasPrefix(flag, "-") {
			args[i] = flag + "=" + l.value(name, val)
			continue
		}
		args[i] = l.value(name, a)
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = l.value(name, v)
	}
	return args, env
}

// setting returns the value of --name in args, else of its environment
// twin, else "".
func setting(args []string, env map[string]string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return env["GEOMATCH_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]
}

// startOrder sorts services so that each comes after those it depends on.
func startOrder(t *testing.T, services map[string]composeService, names []string) []string {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string)
	visit = func(n string) {
		switch state[n] {
		case 1:
			t.Fatalf("depends_on cycle through %s", n)
		case 2:
			return
		}
		state[n] = 1
		deps := make([]string, 0, len(services[n].DependsOn))
		for d := range services[n].DependsOn {
			if _, ok := services[d]; !ok {
				t.Fatalf("service %s depends on %s, which is not a service", n, d)
			}
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			visit(d)
		}
		state[n] = 2
		if slices.Contains(names, n) {
			order = append(order, n)
		}
	}
	for _, n := range names {
		visit(n)
	}
	return order
}

// TestComposeTopology runs docker-compose.yml as processes: a real Consul
// agent and redis-server in place of the consul and redis services, and
// every geomatch service as the geomatch binary with exactly its command
// and environment, service hostnames mapped to loopback addresses. Then
// the cluster must serve as deployed: every matcher ready (/readyz, the
// probe the manifests use, and gRPC health), the router SERVING, location
// updates and an exact nearby search through the router's published port
// reaching every matcher, `geomatch admin status` listing the matchers,
// and a matcher stopped as Compose stops it (SIGTERM, then its
// stop_grace_period) handing its drivers over and exiting cleanly in time.
func TestComposeTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	shellEnv := map[string]string{"GEOMATCH_AUTH_KEY": base64.StdEncoding.EncodeToString(key)}
	f := loadCompose(t, "docker-compose.yml", shellEnv)

	var names []string
	for name, s := range f.Services {
		switch {
		case name == "consul" || name == "redis":
		case s.geomatch():
			if len(s.Command) == 0 {
				t.Fatalf("service %s: no command", name)
			}
			names = append(names, name)
		default:
			t.Fatalf("service %s (image %q): the test has no stand-in for it; extend TestComposeTopology", name, s.Image)
		}
	}
	sort.Strings(names)
	if _, ok := f.Services["consul"]; !ok {
		t.Fatal("no consul service")
	}
	if _, ok := f.Services["redis"]; !ok {
		t.Fatal("no redis service")
	}

	agent := consultest.Start(t)
	redisAddr := redistest.Start(t)
	l := &loopback{t: t, ips: map[string]string{}, ports: map[string]string{},
		external: map[string]string{"consul:8500": agent.Addr, "redis:6379": redisAddr}}
	for i, n := range names {
		l.ips[n] = fmt.Sprintf("127.0.0.%d", 10+i)
	}

	type service struct {
		compose composeService
		args    []string
		env     map[string]string
		proc    *proc
	}
	services := map[string]*service{}
	var matchers []string
	router := ""
	pki := preparePKI(t, f.Services, names)
	for _, n := range startOrder(t, f.Services, names) {
		s := f.Services[n]
		args, env := l.command(n, s)
		pki.mapPaths(args, env)
		services[n] = &service{compose: s, args: args, env: env}
		switch args[0] {
		case "matcher":
			matchers = append(matchers, n)
		case "router":
			if router != "" {
				t.Fatalf("two routers (%s, %s): the test checks one", router, n)
			}
			router = n
		default:
			t.Fatalf("service %s runs geomatch %s; the test knows matcher and router", n, args[0])
		}
		services[n].proc = startProc(t, n, args, env)
	}
	if router == "" || len(matchers) < 2 {
		t.Fatalf("want a router and at least two matchers, have router %q, matchers %v", router, matchers)
	}

	// The router's published port: what a client of the Docker host dials.
	published := ""
	for _, p := range services[router].compose.Ports {
		parts := strings.Split(p, ":")
		published = l.addr(router, parts[len(parts)-1])
	}
	if published == "" {
		t.Fatalf("router %s publishes no port", router)
	}
	if listen := setting(services[router].args, services[router].env, "listen"); listen != published {
		t.Fatalf("router %s publishes %s but listens on %s", router, published, listen)
	}

	// A token for the calls when the router requires one (admin role: the
	// test acts for many drivers).
	ctx := context.Background()
	token := ""
	if strings.Contains(usage(t, "router"), "--auth-key") {
		out, err := run(t, 10*time.Second, shellEnv, "admin", "token", "--subject", "compose-test", "--role", "admin")
		if err != nil {
			t.Fatal(err)
		}
		token = strings.TrimSpace(out)
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}

	// Every matcher ready: the readiness probe of the manifests, and gRPC
	// health.
	ids := map[string]string{}
	for _, n := range matchers {
		s := services[n]
		ids[n] = setting(s.args, s.env, "id")
		metrics := setting(s.args, s.env, "metrics")
		if ids[n] == "" || metrics == "" {
			t.Fatalf("matcher %s: --id %q, --metrics %q: both are needed", n, ids[n], metrics)
		}
		waitFor(t, 60*time.Second, n+" /readyz", func() error {
			s.proc.alive(t)
			return httpOK("http://" + metrics + "/readyz")
		})
		conn := pki.dialMatcher(t, setting(s.args, s.env, "listen"))
		waitFor(t, 10*time.Second, n+" gRPC health", func() error { return serving(ctx, conn, "") })
	}
	conn := dialPlain(t, published)
	waitFor(t, 30*time.Second, router+" gRPC health", func() error {
		services[router].proc.alive(t)
		return serving(ctx, conn, "geomatch.v1.RiderService")
	})

	// Drivers over New York, on enough shards that every matcher owns some,
	// then the nearest of them through the router.
	drivers := geomatchv1.NewDriverServiceClient(conn)
	riders := geomatchv1.NewRiderServiceClient(conn)
	const fleet = 400
	rng := mrand.New(mrand.NewPCG(1, 2))
	pos := make([]*geomatchv1.LatLng, fleet)
	for i := range pos {
		pos[i] = &geomatchv1.LatLng{Lat: 40.65 + 0.2*rng.Float64(), Lng: -74.05 + 0.2*rng.Float64()}
	}
	update := func() error {
		req := &geomatchv1.UpdateLocationsRequest{}
		now := time.Now().UnixMilli()
		for i, p := range pos {
			req.Updates = append(req.Updates, &geomatchv1.LocationUpdate{DriverId: fmt.Sprintf("cab-%03d", i), Position: p, TimestampMs: now})
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := drivers.UpdateLocations(cctx, req)
		if err != nil {
			return err
		}
		if resp.GetAccepted() != fleet {
			return fmt.Errorf("accepted %d of %d: %v", resp.GetAccepted(), fleet, resp.GetRejected())
		}
		return nil
	}
	center := &geomatchv1.LatLng{Lat: 40.75, Lng: -73.95}
	nearby := func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := riders.NearbyDrivers(cctx, &geomatchv1.NearbyDriversRequest{Position: center, Limit: fleet, RadiusM: 50_000})
		if err != nil {
			return err
		}
		got := resp.GetDrivers()
		if len(got) != fleet {
			return fmt.Errorf("%d drivers found, want all %d", len(got), fleet)
		}
		for i := 1; i < len(got); i++ {
			if got[i].GetDistanceM() < got[i-1].GetDistanceM() {
				return fmt.Errorf("result %d (%.1f m) nearer than result %d (%.1f m)", i, got[i].GetDistanceM(), i-1, got[i-1].GetDistanceM())
			}
		}
		for _, d := range got {
			i, err := strconv.Atoi(strings.TrimPrefix(d.GetDriverId(), "cab-"))
			if err != nil || i < 0 || i >= fleet {
				return fmt.Errorf("unknown driver %q", d.GetDriverId())
			}
			if want := geo.DistanceM(geo.LatLng{Lat: center.GetLat(), Lng: center.GetLng()}, geo.LatLng{Lat: pos[i].GetLat(), Lng: pos[i].GetLng()}); math.Abs(d.GetDistanceM()-want) > 1 {
				return fmt.Errorf("%s at %.1f m, want %.1f m", d.GetDriverId(), d.GetDistanceM(), want)
			}
		}
		return nil
	}
	waitFor(t, 30*time.Second, "UpdateLocations through the router", update)
	waitFor(t, 30*time.Second, "NearbyDrivers through the router", nearby)

	// The admin CLI sees every matcher (and, through the router, its load).
	adminEnv := map[string]string{"GEOMATCH_CONSUL": agent.Addr, "GEOMATCH_ROUTER": published}
	if token != "" {
		adminEnv["GEOMATCH_TOKEN"] = token
	}
	waitFor(t, 20*time.Second, "geomatch admin status lists every matcher, healthy, with drivers", func() error {
		out, err := run(t, 20*time.Second, adminEnv, "admin", "--json", "status")
		if err != nil {
			return err
		}
		var st struct{ Nodes []statusNode }
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return fmt.Errorf("%v:\n%s", err, out)
		}
		for _, m := range matchers {
			i := slices.IndexFunc(st.Nodes, func(n statusNode) bool { return n.ID == ids[m] })
			if i < 0 {
				return fmt.Errorf("%s missing:\n%s", ids[m], out)
			}
			node, advertise := st.Nodes[i], setting(services[m].args, services[m].env, "advertise")
			switch {
			case node.Health != "passing" || node.State != "active":
				return fmt.Errorf("%s is %s and %s", node.ID, node.Health, node.State)
			case node.Addr != advertise:
				return fmt.Errorf("%s registered at %s, want its --advertise %s", node.ID, node.Addr, advertise)
			case node.Drivers == 0:
				return fmt.Errorf("%s holds no driver: the search did not need it", node.ID)
			}
		}
		for _, node := range st.Nodes {
			t.Logf("geomatch admin status: %s at %s, %s, %s, %d drivers", node.ID, node.Addr, node.Health, node.State, node.Drivers)
		}
		return nil
	})

	// Compose stops a matcher with SIGTERM and kills it after its
	// stop_grace_period: it must hand its shards over within that time,
	// losing no driver.
	last := matchers[len(matchers)-1]
	grace := services[last].compose.grace(t, last)
	took := services[last].proc.stop(t, grace)
	t.Logf("%s left the ring and exited %v after SIGTERM (grace %v)", last, took.Round(time.Millisecond), grace)
	waitFor(t, 20*time.Second, "NearbyDrivers after "+last+" left", nearby)
	waitFor(t, 20*time.Second, "UpdateLocations after "+last+" left", update)

	took = services[router].proc.stop(t, services[router].compose.grace(t, router))
	t.Logf("%s exited %v after SIGTERM", router, took.Round(time.Millisecond))
}

// statusNode is a node of `geomatch admin --json status`.
type statusNode struct {
	ID, Addr, Health, State string
	Drivers                 int64
}

func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func serving(ctx context.Context, conn *grpc.ClientConn, service string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	if h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health of %q: %v", service, h.GetStatus())
	}
	return nil
}

func httpOK(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	for _, c := range []struct{ in, want string }{
		{"a $SET b", "a v b"},
		{"${SET}", "v"},
		{"${UNSET:-d}", "d"},
		{"${EMPTY:-d}", "d"},
		{"${EMPTY-d}", ""},
		{"${UNSET-d}", "d"},
		{"$$SET", "$SET"},
		{"${SET:?gone}", "v"},
		{"$(openssl rand)", "$(openssl rand)"},
	} {
		got, err := interpolate(c.in, env)
		if err != nil || got != c.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"${UNSET:?set it}", "${EMPTY:?set it}", "${UNSET?set it}"} {
		if _, err := interpolate(in, env); err == nil {
			t.Errorf("interpolate(%q): no error", in)
		}
	}
}

// composePKI stands in for the directory of node certificates the
// geomatch services mount: the certificates their flags name there are
// issued by `geomatch ca` into a temporary directory.
type composePKI struct {
	// mount is the services' mount point, dir its stand-in ("" for none).
	mount, dir string
	// self is a router identity the test dials the matchers with.
	self tlsconfig.Files
}

var nodeFile = regexp.MustCompile(`^(router|matcher)-(.+?)(-key)?\.pem$`)

// preparePKI makes the CA and issues every node certificate the services'
// commands and environments name under their mounted directory.
func preparePKI(t *testing.T, services map[string]composeService, names []string) *composePKI {
	t.Helper()
	p := &composePKI{}
	for _, n := range names {
		for _, v := range services[n].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				continue
			}
			if p.mount != "" && p.mount != parts[1] {
				t.Fatalf("service %s mounts %s; the test stands in for one directory (%s)", n, parts[1], p.mount)
			}
			p.mount = parts[1]
		}
	}
	if p.mount == "" {
		return p
	}
	p.dir = filepath.Join(t.TempDir(), "pki")
	if out, err := run(t, 10*time.Second, nil, "ca", "init", "--dir", p.dir); err != nil {
		t.Fatalf("ca init: %v\n%s", err, out)
	}
	issued := map[string]bool{}
	issue := func(role, id string) {
		if issued[role+"/"+id] {
			return
		}
		issued[role+"/"+id] = true
		if out, err := run(t, 10*time.Second, nil, "ca", "issue", "--dir", p.dir, "--role", role, "--id", id); err != nil {
			t.Fatalf("ca issue %s %s: %v\n%s", role, id, err, out)
		}
	}
	for _, n := range names {
		s := services[n]
		values := slices.Clone(s.Command)
		for _, v := range s.Environment {
			values = append(values, v)
		}
		for _, v := range values {
			if _, after, ok := strings.Cut(v, "="); ok && strings.HasPrefix(v, "-") {
				v = after
			}
			rel, ok := strings.CutPrefix(v, p.mount+"/")
			if !ok {
				continue
			}
			if m := nodeFile.FindStringSubmatch(rel); m != nil {
				issue(m[1], m[2])
			}
		}
	}
	issue("router", "compose-test")
	p.self = tlsconfig.Files{CA: filepath.Join(p.dir, "ca.pem"), Cert: filepath.Join(p.dir, "router-compose-test.pem"), Key: filepath.Join(p.dir, "router-compose-test-key.pem")}
	return p
}

// mapPaths rewrites paths under the mount to the stand-in directory.
func (p *composePKI) mapPaths(args []string, env map[string]string) {
	if p.dir == "" {
		return
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, p.mount+"/", p.dir+"/")
	}
	for k, v := range env {
		env[k] = strings.ReplaceAll(v, p.mount+"/", p.dir+"/")
	}
}

// dialMatcher dials a matcher: with the test's router identity when the
// services have certificates, else in plaintext.
func (p *composePKI) dialMatcher(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	if p.dir == "" {
		return dialPlain(t, addr)
	}
	n, err := tlsconfig.LoadNode(p.self)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(n.ClientConfig(identity.RoleMatcher))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
