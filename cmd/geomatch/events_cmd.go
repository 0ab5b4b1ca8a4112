package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Reconnect backoff of `geomatch events tail`: the first retry waits
// tailMinBackoff, each failed one doubles it up to tailMaxBackoff; an event
// received resets it.
const (
	tailMinBackoff = 100 * time.Millisecond
	tailMaxBackoff = 5 * time.Second
	// tailSaveEvery is how often --cursor-file is rewritten while events
	// arrive: a tail killed without warning repeats at most this much.
	tailSaveEvery = time.Second
)

// eventsGroup is `geomatch events`.
var eventsGroup = &apiGroup{
	name: "events",
	about: `Follows a router's EventService (--target): fence events, trip and driver
lifecycle events, from its durable event log. 'tail' prints one protojson
line per event, with its cursor; it starts with the events logged from now
on, unless --after, --cursor-file or --from-oldest say otherwise. A broken
stream (the router restarts or goes away) is resumed after the last cursor
printed, with a backoff of 100ms doubling to 5s, so nothing is skipped or
repeated. A cursor older than the log's retention fails (exit 1) with the
router's message, which names the oldest cursor still available.`,
	commands: []apiCommand{
		{"tail", "[--set S ...] [--fence ID ...] [--kind fence|trip|driver ...] [--after CURSOR | --cursor-file PATH] [--from-oldest] [--max N]",
			"print matching events as they are logged, one JSON line each", eventsTail},
	},
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return eventsGroup.run(ctx, args, stdout, stderr)
}

// kindNames are the values of --kind.
var kindNames = map[string]geomatchv1.EventKind{
	"fence":  geomatchv1.EventKind_EVENT_KIND_FENCE,
	"trip":   geomatchv1.EventKind_EVENT_KIND_TRIP,
	"driver": geomatchv1.EventKind_EVENT_KIND_DRIVER,
}

// kindFlag is --kind fence,trip,driver (repeatable).
type kindFlag []geomatchv1.EventKind

func (k *kindFlag) String() string {
	if k == nil {
		return ""
	}
	return kindString(*k)
}

func (k *kindFlag) Set(s string) error {
	for _, name := range strings.Split(s, ",") {
		v, ok := kindNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return fmt.Errorf("unknown kind %q: want fence, trip or driver (comma-separated)", name)
		}
		*k = append(*k, v)
	}
	return nil
}

func kindString(ks []geomatchv1.EventKind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = strings.ToLower(strings.TrimPrefix(k.String(), "EVENT_KIND_"))
	}
	return strings.Join(names, ",")
}

// filterFlags are the event filters of a subscription and of a hook.
type filterFlags struct {
	sets, fences listFlag
	kinds        kindFlag
	fromOldest   bool
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.sets, "set", "fence events of set `S` only (repeatable; trip and driver events have no set and pass)")
	fs.Var(&f.fences, "fence", "fence events of fence `ID` only (repeatable)")
	fs.Var(&f.kinds, "kind", "events of these kinds only, any of `fence,trip,driver` (repeatable; default every kind)")
	fs.BoolVar(&f.fromOldest, "from-oldest", false, "start at the oldest event retained instead of the newest (tail: when it has no cursor to resume after)")
}

func eventsTail(fs *flag.FlagSet) apiRun {
	var filter filterFlags
	filter.register(fs)
	after := fs.String("after", "", "resume after `CURSOR` (an event's \"cursor\" field)")
	cursorFile := fs.String("cursor-file", "", "`PATH` of a file that keeps the last cursor printed (rewritten about every second and on exit); read at start when --after is not given, so a restarted tail resumes")
	maxEvents := fs.Int("max", 0, "exit after `N` events (0: follow until interrupted)")
	return func(ctx context.Context, c *apiClient, args []string) error {
		if len(args) > 0 {
			return badUsage("unexpected arguments: %s", strings.Join(args, " "))
		}
		if *maxEvents < 0 {
			return badUsage("--max %d: want N ≥ 0", *maxEvents)
		}
		t := &tailer{
			req:        &geomatchv1.SubscribeRequest{Sets: filter.sets, FenceIds: filter.fences, Kinds: filter.kinds, FromOldest: filter.fromOldest},
			out:        c.out,
			errOut:     c.errOut,
			max:        *maxEvents,
			cursorFile: *cursorFile,
			cursor:     *after,
			target:     c.target,
			routerErr:  c.routerErr,
		}
		if t.cursor == "" && t.cursorFile != "" {
			saved, err := readCursorFile(t.cursorFile)
			if err != nil {
				return err
			}
			t.cursor, t.saved = saved, saved
		}
		conn, err := c.dial()
		if err != nil {
			return err
		}
		t.client = geomatchv1.NewEventServiceClient(conn)
		return t.run(ctx)
	}
}

// tailer follows EventService.Subscribe across broken streams.
type tailer struct {
	client geomatchv1.EventServiceClient
	// req is the subscription; each stream resumes it after cursor.
	req    *geomatchv1.SubscribeRequest
	out    io.Writer
	errOut io.Writer
	// max stops the tail after that many events (0: never).
	max        int
	printed    int
	cursorFile string
	target     string
	routerErr  func(what string, err error) error

	mu sync.Mutex
	// cursor is the last cursor printed (or the starting one).
	cursor string
	// saved is the cursor last written to cursorFile.
	saved string
}

// errTailDone ends a stream once --max events are printed.
var errTailDone = errors.New("--max events printed")

// run prints events until ctx ends (nil), --max events are printed (nil),
// or the router refuses the subscription.
func (t *tailer) run(ctx context.Context) (err error) {
	if t.cursorFile != "" {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { t.saveEvery(stop) })
		defer func() {
			close(stop)
			wg.Wait()
			if serr := t.save(); serr != nil {
				err = errors.Join(err, serr)
			}
		}()
	}
	backoff := tailMinBackoff
	for {
		n, err := t.follow(ctx)
		switch {
		case ctx.Err() != nil, errors.Is(err, errTailDone):
			return nil
		case !retryable(err):
			return t.refused(err)
		}
		if n > 0 {
			backoff = tailMinBackoff
		}
		fmt.Fprintf(t.errOut, "geomatch events tail: the stream from the router at %s broke (%s); %s in %v\n",
			t.target, describe(err), t.resumeWhere(), backoff)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		backoff = min(2*backoff, tailMaxBackoff)
	}
}

// follow opens one stream after the last cursor and prints its events; it
// returns how many it printed and why the stream ended.
func (t *tailer) follow(ctx context.Context) (int, error) {
	req := proto.Clone(t.req).(*geomatchv1.SubscribeRequest)
	req.AfterCursor = t.last()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := t.client.Subscribe(ctx, req)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		ev, err := stream.Recv()
		if err != nil {
			return n, err
		}
		line, err := protoJSON(ev, false)
		if err != nil {
			return n, fmt.Errorf("event %s: %w", ev.GetEventId(), err)
		}
		if _, err := t.out.Write(append(line, '\n')); err != nil {
			return n, fmt.Errorf("stdout: %w", err)
		}
		n++
		t.printed++
		if c := ev.GetCursor(); c != "" {
			t.mu.Lock()
			t.cursor = c
			t.mu.Unlock()
		}
		if t.max > 0 && t.printed >= t.max {
			return n, errTailDone
		}
	}
}

// retryable reports whether a stream that ended with err is worth
// resuming: the router went away or restarted, or ended the stream.
func retryable(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.Aborted:
		return true
	}
	return false
}

func describe(err error) string {
	if errors.Is(err, io.EOF) {
		return "the router ended it"
	}
	st := status.Convert(err)
	return fmt.Sprintf("%v: %s", st.Code(), st.Message())
}

func (t *tailer) resumeWhere() string {
	switch {
	case t.last() != "":
		return "resuming after cursor " + t.last()
	case t.req.GetFromOldest():
		return "starting again at the oldest event"
	}
	return "no event seen yet, starting again at the newest"
}

// refused explains a subscription the router will not serve as asked.
func (t *tailer) refused(err error) error {
	if status.Code(err) == codes.OutOfRange {
		hint := "resume from the oldest cursor it names with --after"
		if t.cursorFile != "" {
			hint += fmt.Sprintf(" (or delete %s to start at the newest event)", t.cursorFile)
		}
		return fmt.Errorf("%w; events after cursor %s are gone, so %s, knowing that events were missed", t.routerErr("events tail", err), t.last(), hint)
	}
	if _, ok := status.FromError(err); ok {
		return t.routerErr("events tail", err)
	}
	return fmt.Errorf("events tail: %w", err)
}

func (t *tailer) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cursor
}

// saveEvery writes the cursor file every tailSaveEvery until stop closes.
func (t *tailer) saveEvery(stop <-chan struct{}) {
	tick := time.NewTicker(tailSaveEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if err := t.save(); err != nil {
				fmt.Fprintf(t.errOut, "geomatch events tail: %v\n", err)
			}
		}
	}
}

// save writes the last cursor to the cursor file if it changed. Only one
// goroutine saves at a time: saveEvery, then run once it has stopped.
func (t *tailer) save() error {
	c := t.last()
	if c == "" || c == t.saved {
		return nil
	}
	if err := writeFileAtomic(t.cursorFile, []byte(c+"\n")); err != nil {
		return fmt.Errorf("--cursor-file: %w", err)
	}
	t.saved = c
	return nil
}

// readCursorFile returns the cursor kept in path; "" when there is no
// such file yet.
func readCursorFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("--cursor-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeFileAtomic replaces path with data: it writes a temporary file
// beside it, syncs it and renames it over path, so a reader (or a crash)
// sees the old content or the new, never part of it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
