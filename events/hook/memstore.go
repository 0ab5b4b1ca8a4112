package hook

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// DefaultMemoryDeadLetters is MemoryStore's default bound on each hook's
// dead letters: enough to inspect an outage in dev, a few MB per hook.
const DefaultMemoryDeadLetters = 10_000

// MemoryStore is a Store in process memory, for one router (geomatch dev)
// and tests. Safe for concurrent use.
type MemoryStore struct {
	maxDead int
	now     func() time.Time

	mu     sync.Mutex
	hooks  map[string]*memHook
	leases map[string]memLease
}

type memHook struct {
	def      *geomatchv1.Hook
	progress Progress
	dead     []DeadLetter // at most maxDead, oldest first
	dropped  int64        // dead letters evicted by the bound
}

type memLease struct {
	owner   string
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store keeping at most maxDeadLetters
// dead letters per hook (DefaultMemoryDeadLetters when <= 0).
func NewMemoryStore(maxDeadLetters int) *MemoryStore {
	if maxDeadLetters <= 0 {
		maxDeadLetters = DefaultMemoryDeadLetters
	}
	return &MemoryStore{maxDead: maxDeadLetters, now: time.Now, hooks: map[string]*memHook{}, leases: map[string]memLease{}}
}

// PutHook implements Store.
func (s *MemoryStore) PutHook(_ context.Context, h *geomatchv1.Hook, start Progress, maxHooks int) error {
	def := proto.Clone(h).(*geomatchv1.Hook)
	def.Stats = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.hooks[h.GetHookId()]; ok {
		old.def = def
		return nil
	}
	if maxHooks > 0 && len(s.hooks) >= maxHooks {
		return fmt.Errorf("put hook %s: %w (at most %d)", h.GetHookId(), ErrTooManyHooks, maxHooks)
	}
	s.hooks[h.GetHookId()] = &memHook{def: def, progress: start}
	return nil
}

// DeleteHook implements Store.
func (s *MemoryStore) DeleteHook(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hooks[id]; !ok {
		return fmt.Errorf("delete hook %s: %w", id, ErrNotFound)
	}
	delete(s.hooks, id)
	delete(s.leases, id)
	return nil
}

// Hooks implements Store.
func (s *MemoryStore) Hooks(context.Context) ([]*geomatchv1.Hook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*geomatchv1.Hook, 0, len(s.hooks))
	for _, h := range s.hooks {
		out = append(out, proto.Clone(h.def).(*geomatchv1.Hook))
	}
	return out, nil
}

// Progress implements Store.
func (s *MemoryStore) Progress(_ context.Context, id string) (Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return Progress{}, fmt.Errorf("progress of hook %s: %w", id, ErrNotFound)
	}
	return h.progress, nil
}

// SaveProgress implements Store.
func (s *MemoryStore) SaveProgress(_ context.Context, id, owner string, p Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok || !s.holds(id, owner) {
		return fmt.Errorf("save progress of hook %s: %w", id, ErrLeaseLost)
	}
	h.progress = p
	return nil
}

// holds reports whether owner holds id's lease; s.mu is held.
func (s *MemoryStore) holds(id, owner string) bool {
	l, ok := s.leases[id]
	return ok && l.owner == owner && s.now().Before(l.expires)
}

// Lease implements Store.
func (s *MemoryStore) Lease(_ context.Context, id, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hooks[id]; !ok {
		return false, nil
	}
	now := s.now()
	if l, ok := s.leases[id]; ok && l.owner != owner && now.Before(l.expires) {
		return false, nil
	}
	s.leases[id] = memLease{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, id, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[id]; ok && l.owner == owner {
		delete(s.leases, id)
	}
	return nil
}

// DeadLetter implements Store. Past the bound the oldest letters are
// evicted (and counted: DeadLettersEvicted).
func (s *MemoryStore) DeadLetter(_ context.Context, id string, letters []DeadLetter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return fmt.Errorf("dead-letter for hook %s: %w", id, ErrNotFound)
	}
	for _, l := range letters {
		l.JSON = append([]byte(nil), l.JSON...)
		h.dead = append(h.dead, l)
	}
	if over := len(h.dead) - s.maxDead; over > 0 {
		h.dead = append(h.dead[:0:0], h.dead[over:]...)
		h.dropped += int64(over)
	}
	return nil
}

// DeadLetters implements Store.
func (s *MemoryStore) DeadLetters(_ context.Context, id string, max int) ([]DeadLetter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return nil, fmt.Errorf("dead letters of hook %s: %w", id, ErrNotFound)
	}
	n := min(max, len(h.dead))
	return append([]DeadLetter(nil), h.dead[:n]...), nil
}

// DeadLettersEvicted returns how many of a hook's dead letters the bound
// has evicted (0 for an unknown hook).
func (s *MemoryStore) DeadLettersEvicted(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hooks[id]; ok {
		return h.dropped
	}
	return 0
}
