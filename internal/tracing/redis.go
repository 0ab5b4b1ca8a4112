package tracing

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// RedisHook returns the go-redis hook that records each command (and each
// pipeline) as a span, nil while tracing is off. Install it with
// client.AddHook once per client (store.NewRedis does).
func RedisHook() redis.Hook {
	if s := active.Load(); s != nil {
		return s.hook
	}
	return nil
}

// redisHook traces commands whose context carries a span: they become its
// children. Commands without one (background loops) are passed through
// untouched. Arguments are not recorded: they hold ids and positions.
type redisHook struct {
	tracer trace.Tracer
}

var dbSystem = attribute.String("db.system.name", "redis")

// DialHook implements redis.Hook: dials are not traced.
func (redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook.
func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmd)
		}
		op := strings.ToUpper(cmd.Name())
		ctx, span := h.tracer.Start(ctx, "redis "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(dbSystem, attribute.String("db.operation.name", op)))
		err := next(ctx, cmd)
		end(span, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmds)
		}
		ctx, span := h.tracer.Start(ctx, "redis pipeline", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(dbSystem, attribute.String("db.operation.name", "PIPELINE"), attribute.Int("db.operation.batch.size", len(cmds))))
		err := next(ctx, cmds)
		end(span, err)
		return err
	}
}

// end ends span, marking it failed for an error other than a missing key.
func end(span trace.Span, err error) {
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	End(span, err)
}
