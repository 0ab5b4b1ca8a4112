// Package membership tells routers and matchers who the matcher nodes are
// and which of them owns which shard: it publishes the current shard map
// (shardmap.Map, built from a ring document with an epoch) and wakes watchers
// when a newer one is published.
//
// Source is the seam between the data path and wherever membership lives.
// This package holds the in-process implementation used by `geomatch dev`
// (several nodes in one process share one Local) and the static one used when
// a fixed peer list is given on the command line; the Consul-backed source
// implements the same interface.
package membership

import (
	"context"
	"fmt"
	"sync"

	"github.com/geomatch/geomatch/shardmap"
)

// Source publishes the current shard map.
type Source interface {
	// Current returns the newest map and a channel that is closed once a
	// newer map has been published.
	Current() (*shardmap.Map, <-chan struct{})
	// Refresh asks the source to fetch the newest ring now, for example after
	// a node answered with a newer epoch than the caller's. Sources that are
	// always current return nil at once.
	Refresh(ctx context.Context) error
	// Kind names the source for status output: "local", "static", "consul".
	Kind() string
}

// Relay is a Source whose rings come from records that peers can pass on
// to each other (Consul's): a process cut off from Consul learns from
// the matchers it still reaches the ring the rest of the cluster moved to,
// instead of routing by a ring it cannot know is old.
type Relay interface {
	Source
	// Record returns the record behind Current.
	Record() Record
	// Adopt installs rec, learned from the peer named from, when it is
	// newer than the current ring, and reports whether it did.
	Adopt(rec Record, from string) bool
}

// Local is a Source held in memory. A static Local never changes; a local one
// is changed with Update, which bumps the epoch. Safe for concurrent use.
type Local struct {
	kind string

	mu      sync.Mutex
	cur     *shardmap.Map
	changed chan struct{}
}

// NewLocal returns an in-process source, mutable with Update, starting from
// doc.
func NewLocal(doc shardmap.Doc) (*Local, error) { return newLocal("local", doc) }

// NewStatic returns a source for a fixed peer list: every process given the
// same document computes the same placement.
func NewStatic(doc shardmap.Doc) (*Local, error) { return newLocal("static", doc) }

func newLocal(kind string, doc shardmap.Doc) (*Local, error) {
	m, err := shardmap.NewMap(doc)
	if err != nil {
		return nil, fmt.Errorf("%s membership: %w", kind, err)
	}
	return &Local{kind: kind, cur: m, changed: make(chan struct{})}, nil
}

// Current implements Source.
func (l *Local) Current() (*shardmap.Map, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.changed
}

// Refresh implements Source; a Local is always current.
func (l *Local) Refresh(context.Context) error { return nil }

// Kind implements Source.
func (l *Local) Kind() string { return l.kind }

// Update applies change to a copy of the current document, bumps the epoch,
// publishes the new map and returns it. A change that fails, or produces an
// invalid document, publishes nothing.
func (l *Local) Update(change func(*shardmap.Doc) error) (*shardmap.Map, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	doc := l.cur.Doc()
	if err := change(&doc); err != nil {
		return nil, fmt.Errorf("update ring: %w", err)
	}
	doc.Epoch = l.cur.Epoch() + 1
	return l.publishLocked(doc)
}

// publishLocked makes doc the current map and wakes the watchers; l.mu is
// held.
func (l *Local) publishLocked(doc shardmap.Doc) (*shardmap.Map, error) {
	m, err := shardmap.NewMap(doc)
	if err != nil {
		return nil, fmt.Errorf("update ring to epoch %d: %w", doc.Epoch, err)
	}
	l.cur = m
	close(l.changed)
	l.changed = make(chan struct{})
	return m, nil
}
