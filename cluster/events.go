package cluster

import (
	"cmp"
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/geomatch/geomatch/events"
	"github.com/geomatch/geomatch/events/hook"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/router"
	"github.com/geomatch/geomatch/store"
)

// redisClienter is a store on Redis that shares its client (store.Redis,
// and the binary's store that owns its client).
type redisClienter interface {
	Client() redis.UniversalClient
}

// EventLogFor returns the event log that goes with st: Redis Streams on
// st's server when st is on Redis (with the store's key prefix), an
// in-memory log otherwise (geomatch dev's).
func EventLogFor(st store.Store, prefix string) (events.Log, error) {
	if rc, ok := st.(redisClienter); ok {
		return events.NewRedis(rc.Client(), events.RedisConfig{Prefix: cmp.Or(prefix, store.DefaultKeyPrefix)})
	}
	return events.NewMemory(events.MemoryConfig{})
}

// hookStore returns where hook definitions and delivery progress live: on
// st's Redis server, or in memory.
func hookStore(st store.Store, prefix string) hook.Store {
	if rc, ok := st.(redisClienter); ok {
		return hook.NewRedisStore(rc.Client(), hook.RedisStoreConfig{Prefix: "{" + cmp.Or(prefix, store.DefaultKeyPrefix) + "hooks}"})
	}
	return hook.NewMemoryStore(0)
}

// hooksService is a hook manager as the router's hook registry: the
// manager's errors become the router's (INVALID_ARGUMENT, NOT_FOUND).
type hooksService struct{ m *hook.Manager }

func (h hooksService) Put(ctx context.Context, def *geomatchv1.Hook) (*geomatchv1.Hook, error) {
	out, err := h.m.Put(ctx, def)
	return out, routerHookError(err)
}

func (h hooksService) Delete(ctx context.Context, id string) error {
	return routerHookError(h.m.Delete(ctx, id))
}

func (h hooksService) List(ctx context.Context) ([]*geomatchv1.Hook, error) {
	out, err := h.m.List(ctx)
	return out, routerHookError(err)
}

func routerHookError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hook.ErrInvalid), errors.Is(err, hook.ErrTooManyHooks):
		return marked{err, router.ErrInvalidHook}
	case errors.Is(err, hook.ErrNotFound):
		return marked{err, router.ErrNoHook}
	}
	return err
}

// marked is err, also matching mark under errors.Is, with err's message.
type marked struct{ err, mark error }

func (m marked) Error() string   { return m.err.Error() }
func (m marked) Unwrap() []error { return []error{m.err, m.mark} }
