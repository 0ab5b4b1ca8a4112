package hook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsMaxPending bounds the publishes awaiting an ack on one connection:
// the concurrent batches of one runner (Config.Concurrency × BatchSize)
// fit under it with defaults.
const natsMaxPending = 4096

// streamPrefix starts the name of a stream the sink creates.
const streamPrefix = "GEOMATCH_"

// natsSink publishes to a JetStream subject.
type natsSink struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	hookID  string
	timeout time.Duration
	logger  *slog.Logger

	mu          sync.Mutex
	streamKnown bool // a stream captures subject (checked or created)
}

func newNATSSink(hookID string, ep Endpoint, timeout time.Duration, logger *slog.Logger) (*natsSink, error) {
	opts := []nats.Option{
		nats.Name("geomatch hook " + hookID),
		nats.Timeout(timeout),
		// The server may be down when the runner starts and come back:
		// deliveries fail (and are retried) meanwhile.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}
	if ep.User != "" || ep.Password != "" {
		opts = append(opts, nats.UserInfo(ep.User, ep.Password))
	}
	nc, err := nats.Connect("nats://"+ep.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ep, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(natsMaxPending),
		jetstream.WithPublishAsyncTimeout(timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("JetStream on %s: %w", ep, err)
	}
	return &natsSink{nc: nc, js: js, subject: ep.Target, hookID: hookID, timeout: timeout, logger: logger}, nil
}

// Deliver publishes every event with Nats-Msg-Id = event id, all at once,
// and waits for every ack.
func (s *natsSink) Deliver(ctx context.Context, batch []Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, d := range batch {
		m := nats.NewMsg(s.subject)
		m.Data = d.JSON
		m.Header.Set(jetstream.MsgIDHeader, d.ID)
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("publish event %s to %s: %w", d.ID, s.subject, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				s.forgetStream() // deleted under us: look again next time
			}
			return fmt.Errorf("publish event %s to %s: %w", batch[i].ID, s.subject, err)
		case <-ctx.Done():
			return fmt.Errorf("publish to %s: %d of %d acks: %w", s.subject, i, len(batch), ctx.Err())
		}
	}
	return nil
}

// ensureStream makes sure a stream captures the subject, creating
// GEOMATCH_<subject> (file storage, limits retention, JetStream's default
// duplicate window of 2 minutes) when none does.
func (s *natsSink) ensureStream(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streamKnown {
		return nil
	}
	_, err := s.js.StreamNameBySubject(ctx, s.subject)
	switch {
	case err == nil:
		s.streamKnown = true
		return nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("find the stream of %s: %w", s.subject, err)
	}
	name := StreamName(s.subject)
	_, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "geomatch events of hook " + s.hookID,
		Subjects:    []string{s.subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s for %s: %w", name, s.subject, err)
	}
	if err == nil {
		s.logger.Info("created a JetStream stream for a hook", "hook", s.hookID, "stream", name, "subject", s.subject)
	}
	s.streamKnown = true
	return nil
}

func (s *natsSink) forgetStream() {
	s.mu.Lock()
	s.streamKnown = false
	s.mu.Unlock()
}

// Close drops the connection (every publish has been acked or given up
// on by then).
func (s *natsSink) Close() error {
	s.nc.Close()
	return nil
}

// StreamName is the name of the stream a NATS hook creates for its
// subject when no stream captures it: "GEOMATCH_" and the subject with
// every byte but letters, digits, "-" and "_" replaced by "_"; a subject
// longer than 100 bytes is cut and followed by "_" and 16 hex digits of
// its SHA-256, so names stay short and distinct.
func StreamName(subject string) string {
	const maxKept = 100
	var b strings.Builder
	b.WriteString(streamPrefix)
	for i := 0; i < len(subject) && i < maxKept; i++ {
		c := subject[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if len(subject) > maxKept {
		sum := sha256.Sum256([]byte(subject))
		b.WriteString("_" + hex.EncodeToString(sum[:8]))
	}
	return b.String()
}
