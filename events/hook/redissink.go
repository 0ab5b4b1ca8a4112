package hook

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisSink appends to a Redis stream.
type redisSink struct {
	rdb    *redis.Client
	stream string
	maxLen int64
}

func newRedisSink(ep Endpoint, maxLen int64, timeout time.Duration) *redisSink {
	rdb := redis.NewClient(&redis.Options{
		Addr:         ep.Addr,
		Username:     ep.User,
		Password:     ep.Password,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// One connection per concurrent batch of the runner.
		PoolSize: 8,
	})
	return &redisSink{rdb: rdb, stream: ep.Target, maxLen: maxLen}
}

// Deliver pipelines one XADD <stream> MAXLEN ~ <maxLen> * id <event_id>
// event <json> per event.
func (s *redisSink) Deliver(ctx context.Context, batch []Delivery) error {
	pipe := s.rdb.Pipeline()
	for _, d := range batch {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: s.stream,
			MaxLen: s.maxLen,
			Approx: true,
			Values: []any{"id", d.ID, "event", d.JSON},
		})
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		for i, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("XADD event %s to %s: %w", batch[i].ID, s.stream, c.Err())
			}
		}
		return fmt.Errorf("XADD to %s: %w", s.stream, err)
	}
	return nil
}

// Close closes the client's connections.
func (s *redisSink) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("close redis sink %s: %w", s.stream, err)
	}
	return nil
}
