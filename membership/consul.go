package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/geomatch/geomatch/internal/defaults"
	"github.com/geomatch/geomatch/shardmap"
)

// ConsulConfig says where the cluster's membership lives in Consul.
type ConsulConfig struct {
	// Addr is the Consul HTTP API, host:port (or a URL with scheme).
	Addr string
	// Token is the Consul ACL token; empty for none.
	Token string
	// CAFile, CertFile and KeyFile are PEM files for HTTPS to Consul: the
	// CA that signs Consul's certificate, and a client certificate and key
	// when Consul verifies clients (verify_incoming). Setting any of them
	// makes an Addr without a scheme use https.
	CAFile, CertFile, KeyFile string
	// Prefix is the KV folder of the cluster; default "geomatch". Several
	// clusters can share a Consul with different prefixes and services.
	Prefix string
	// Service is the Consul service name the matchers register as; default
	// "geomatch-matcher".
	Service string
	// Timeout bounds each Consul call that is not a blocking query;
	// default 3 s.
	Timeout time.Duration
	// ApplyTimeout bounds how long a settings change (ApplySettings) waits
	// for the ring writer to publish a ring that includes it; default
	// DefaultApplyTimeout.
	ApplyTimeout time.Duration
}

func (c *ConsulConfig) fill() {
	if c.Prefix == "" {
		c.Prefix = "geomatch"
	}
	if c.Service == "" {
		c.Service = "geomatch-matcher"
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
}

// RingKey, SettingsKey and WriterKey are the cluster's keys in Consul KV.
func (c ConsulConfig) RingKey() string { c.fill(); return c.Prefix + "/ring" }

// SettingsKey is where the operator's Settings live.
func (c ConsulConfig) SettingsKey() string { c.fill(); return c.Prefix + "/settings" }

// WriterKey is the ring writer's lock.
func (c ConsulConfig) WriterKey() string { c.fill(); return c.Prefix + "/writer" }

// ServiceName is the matchers' Consul service name.
func (c ConsulConfig) ServiceName() string { c.fill(); return c.Service }

// Validate checks cfg by the configuration rule every geomatch component
// follows: a zero duration is its default, a negative one an error.
func (c ConsulConfig) Validate() error {
	var f defaults.Filler
	f.Duration("Timeout", &c.Timeout, 3*time.Second)
	f.Duration("ApplyTimeout", &c.ApplyTimeout, DefaultApplyTimeout)
	return f.Err("consul config")
}

// NewConsulClient returns a Consul API client for cfg, once cfg is valid
// (Validate): every process that uses Consul builds its client here at
// start.
func NewConsulClient(cfg ConsulConfig) (*api.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	ac := api.DefaultConfig()
	if cfg.Addr != "" {
		ac.Address = cfg.Addr
	}
	ac.Token = cfg.Token
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
		if !strings.Contains(cfg.Addr, "://") {
			ac.Scheme = "https"
		}
		ac.TLSConfig = api.TLSConfig{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", cfg.Addr, err)
	}
	return c, nil
}

// blockingWait is the longest a blocking query waits for a change; every
// blocking query also runs under a context deadline a little longer, so a
// Consul that stops answering (paused, partitioned) is noticed.
const blockingWait = 10 * time.Second

// blockingQuery returns query options for a blocking query at index with a
// deadline, and the cancel of that deadline.
func blockingQuery(ctx context.Context, index uint64, consistent bool) (*api.QueryOptions, context.CancelFunc) {
	qctx, cancel := context.WithTimeout(ctx, blockingWait+5*time.Second)
	q := &api.QueryOptions{WaitIndex: index, WaitTime: blockingWait, RequireConsistent: consistent}
	return q.WithContext(qctx), cancel
}

// ReadRing reads the ring record; found is false when there is none yet.
func ReadRing(ctx context.Context, c *api.Client, cfg ConsulConfig) (rec Record, index uint64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(cfg))
	defer cancel()
	pair, _, err := c.KV().Get(cfg.RingKey(), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return Record{}, 0, false, fmt.Errorf("read ring from consul: %w", err)
	}
	if pair == nil {
		return Record{}, 0, false, nil // index 0: a check-and-set creates it
	}
	if err := json.Unmarshal(pair.Value, &rec); err != nil {
		return Record{}, 0, false, fmt.Errorf("ring record at %s: %w", cfg.RingKey(), err)
	}
	return rec, pair.ModifyIndex, true, nil
}

// ReadSettings reads the settings; found is false when there are none yet.
func ReadSettings(ctx context.Context, c *api.Client, cfg ConsulConfig) (s Settings, index uint64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(cfg))
	defer cancel()
	pair, _, err := c.KV().Get(cfg.SettingsKey(), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return Settings{}, 0, false, fmt.Errorf("read ring settings from consul: %w", err)
	}
	if pair == nil {
		return Settings{}, 0, false, nil
	}
	if err := json.Unmarshal(pair.Value, &s); err != nil {
		return Settings{}, 0, false, fmt.Errorf("ring settings at %s: %w", cfg.SettingsKey(), err)
	}
	return s, pair.ModifyIndex, true, nil
}

// ErrConflict is returned by UpdateSettings when the settings changed
// concurrently more times than it retries.
var ErrConflict = errors.New("ring settings changed concurrently; try again")

// UpdateSettings applies change to the current settings with
// check-and-set (retrying a few times on a concurrent change) and returns
// the new settings and their modify index. Settings must exist (the ring
// writer creates them).
func UpdateSettings(ctx context.Context, c *api.Client, cfg ConsulConfig, change func(*Settings) error) (Settings, uint64, error) {
	for range 5 {
		s, index, found, err := ReadSettings(ctx, c, cfg)
		if err != nil {
			return Settings{}, 0, err
		}
		if !found {
			return Settings{}, 0, fmt.Errorf("no ring settings at %s: is a matcher with --consul running?", cfg.SettingsKey())
		}
		next := s.Clone()
		if err := change(&next); err != nil {
			return Settings{}, 0, err
		}
		next.Generation = s.Generation + 1
		if err := next.Validate(); err != nil {
			return Settings{}, 0, err
		}
		val, err := json.Marshal(next)
		if err != nil {
			return Settings{}, 0, fmt.Errorf("encode ring settings: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, timeoutOf(cfg))
		ok, _, err := c.KV().CAS(&api.KVPair{Key: cfg.SettingsKey(), Value: val, ModifyIndex: index}, (&api.WriteOptions{}).WithContext(wctx))
		cancel()
		if err != nil {
			return Settings{}, 0, fmt.Errorf("write ring settings to consul: %w", err)
		}
		if ok {
			_, idx, _, err := ReadSettings(ctx, c, cfg)
			return next, idx, err
		}
	}
	return Settings{}, 0, ErrConflict
}

func timeoutOf(cfg ConsulConfig) time.Duration {
	cfg.fill()
	return cfg.Timeout
}

// Consul is a Source that follows the ring record in Consul KV with
// blocking queries. It keeps serving the last ring it read while Consul is
// unreachable, and never goes back to an older epoch. Safe for concurrent
// use; Run must be running for it to follow changes.
type Consul struct {
	client *api.Client
	cfg    ConsulConfig
	log    *slog.Logger

	mu      sync.Mutex
	cur     *shardmap.Map
	rec     Record
	index   uint64
	changed chan struct{}
	ready   chan struct{} // closed once a ring was read
}

// NewConsul returns a source reading the ring of cfg through client.
func NewConsul(client *api.Client, cfg ConsulConfig, log *slog.Logger) *Consul {
	cfg.fill()
	return &Consul{client: client, cfg: cfg, log: log, changed: make(chan struct{}), ready: make(chan struct{})}
}

// Kind implements Source.
func (c *Consul) Kind() string { return "consul" }

// Current implements Source. It must not be called before Wait returned
// nil.
func (c *Consul) Current() (*shardmap.Map, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur, c.changed
}

// Record returns the ring record behind Current.
func (c *Consul) Record() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// Wait blocks until a ring has been read (Run reads it), or ctx is done.
func (c *Consul) Wait(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the ring at %s in consul: %w", c.cfg.RingKey(), ctx.Err())
	}
}

// Refresh implements Source with a consistent read.
func (c *Consul) Refresh(ctx context.Context) error {
	rec, index, found, err := ReadRing(ctx, c.client, c.cfg)
	if err != nil {
		return err
	}
	if found {
		c.publish(rec, index, "consul")
	}
	return nil
}

// Adopt implements Relay: it installs rec, a ring record a peer read from
// Consul, when it is newer than the current ring. Consul stays the only
// writer; a record passed on is one it holds (or held), so adopting it
// early only saves the wait for Consul (unreachable from here, or slower
// than the peer).
func (c *Consul) Adopt(rec Record, from string) bool {
	return c.publish(rec, 0, from)
}

// publish installs rec if it is newer than the current ring, and reports
// whether it did. from names where it came from: "consul", or a peer.
// index is the record's Consul modify index (0: from a peer, the index
// already held stays).
func (c *Consul) publish(rec Record, index uint64, from string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && rec.Doc.Epoch <= c.cur.Epoch() {
		return false
	}
	m, err := shardmap.NewMap(rec.Doc)
	if err != nil {
		c.log.Error("ignoring an invalid ring record", "from", from, "key", c.cfg.RingKey(), "index", index, "err", err)
		return false
	}
	first := c.cur == nil
	c.cur, c.rec = m, rec
	if index != 0 {
		c.index = index
	}
	close(c.changed)
	c.changed = make(chan struct{})
	if first {
		close(c.ready)
	}
	c.log.Info("ring from "+from, "epoch", rec.Doc.Epoch, "members", len(rec.Doc.Members), "writer", rec.Writer, "reason", rec.Reason)
	return true
}

// Run follows the ring key until ctx is done. Consul errors are logged and
// retried with backoff; the last ring stays in use meanwhile.
func (c *Consul) Run(ctx context.Context) error {
	var index uint64
	backoff := 100 * time.Millisecond
	failing := false
	for ctx.Err() == nil {
		q, cancel := blockingQuery(ctx, index, false)
		pair, meta, err := c.client.KV().Get(c.cfg.RingKey(), q)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !failing {
				c.log.Warn("consul unreachable; serving the last known ring", "err", err)
				failing = true
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if failing {
			c.log.Info("consul reachable again")
			failing = false
		}
		backoff = 100 * time.Millisecond
		if meta.LastIndex < index { // Consul's index went back (restored): start over
			index = 0
			continue
		}
		index = meta.LastIndex
		if pair == nil {
			continue
		}
		var rec Record
		if err := json.Unmarshal(pair.Value, &rec); err != nil {
			c.log.Error("ignoring an unreadable ring record", "key", c.cfg.RingKey(), "err", err)
			continue
		}
		c.publish(rec, pair.ModifyIndex, "consul")
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
