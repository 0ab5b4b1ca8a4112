package events_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/events"
)

func TestCursorStringRoundTrips(t *testing.T) {
	cursors := []events.Cursor{
		{},
		events.NewCursor(make([]events.Position, 8)),
		events.NewCursor([]events.Position{{Seq: 1}, {Seq: 2}, {Seq: 300}, {Seq: 1 << 40}}),
		events.NewCursor([]events.Position{{Ms: 1_700_000_000_000, Seq: 3}, {Ms: 1_699_999_999_000}, {Ms: math.MaxUint64, Seq: math.MaxUint64}, {}}),
	}
	for _, c := range cursors {
		s := c.String()
		if !strings.HasPrefix(s, "c1") || strings.ContainsAny(s, "+/=") {
			t.Errorf("%s: not a URL-safe c1 string", s)
		}
		n := c.Partitions()
		if n == 0 {
			n = 8 // the zero cursor parses for any count
		}
		got, err := events.ParseCursor(s, n)
		if err != nil {
			t.Fatalf("parse %s: %v", s, err)
		}
		if !got.Equal(c) || got.String() != s {
			t.Errorf("parse(%s) = %s", s, got)
		}
	}
}

func TestCursorOfEightPartitionsIsShort(t *testing.T) {
	pos := make([]events.Position, 8)
	for p := range pos {
		pos[p] = events.Position{Seq: 1_000_000_000 + uint64(p)}
	}
	if s := events.NewCursor(pos).String(); len(s) > 70 {
		t.Errorf("cursor of 8 partitions a billion entries in: %d chars (%s)", len(s), s)
	}
	for p := range pos {
		pos[p] = events.Position{Seq: 5000}
	}
	if s := events.NewCursor(pos).String(); len(s) > 40 {
		t.Errorf("cursor of 8 partitions 5000 entries in: %d chars (%s)", len(s), s)
	}
}

func TestParseCursorRejects(t *testing.T) {
	eight := events.NewCursor(make([]events.Position, 8)).String()
	tests := []struct {
		name, s string
	}{
		{"empty", ""},
		{"no version", "AAAA"},
		{"other version", "c2" + eight[2:]},
		{"not base64url", "c1!!!!"},
		{"padded base64", eight + "="},
		{"standard base64 alphabet", "c1+/"},
		{"truncated", eight[:len(eight)-3]},
		{"trailing bytes", events.NewCursor(nil).String() + "AA"},
		{"non-minimal varint", "c1CICAAA"},
		{"other partition count", events.NewCursor(make([]events.Position, 4)).String()},
		{"huge partition count", "c1_____w8"},
		{"too long", "c1" + strings.Repeat("A", 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.ParseCursor(tt.s, 8)
			if err == nil || !errors.Is(err, events.ErrBadCursor) {
				t.Fatalf("ParseCursor(%q) = %v, want ErrBadCursor", tt.s, err)
			}
		})
	}
}

func TestCursorOrder(t *testing.T) {
	c := func(seqs ...uint64) events.Cursor {
		pos := make([]events.Position, len(seqs))
		for i, s := range seqs {
			pos[i] = events.Position{Seq: s}
		}
		return events.NewCursor(pos)
	}
	tests := []struct {
		name          string
		a, b          events.Cursor
		before, equal bool
	}{
		{"same", c(1, 2), c(1, 2), false, true},
		{"one partition behind", c(1, 2), c(1, 3), true, false},
		{"every partition behind", c(1, 2), c(2, 3), true, false},
		{"ahead", c(2, 2), c(1, 2), false, false},
		{"incomparable", c(1, 3), c(2, 2), false, false},
		{"zero before any entry", events.Cursor{}, c(0, 1), true, false},
		{"zero equals all-zero", events.Cursor{}, c(0, 0), false, true},
		{"ms orders before seq", events.NewCursor([]events.Position{{Ms: 1, Seq: 9}}), events.NewCursor([]events.Position{{Ms: 2}}), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Before(tt.b); got != tt.before {
				t.Errorf("%s.Before(%s) = %v", tt.a, tt.b, got)
			}
			if got := tt.a.Equal(tt.b); got != tt.equal {
				t.Errorf("%s.Equal(%s) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestCursorWithCopies(t *testing.T) {
	a := events.NewCursor(make([]events.Position, 3))
	b := a.With(3, 1, events.Position{Seq: 7})
	if !a.IsZero() || b.Position(1).Seq != 7 || b.Partitions() != 3 {
		t.Fatalf("a = %s, b = %s", a, b)
	}
	z := events.Cursor{}.With(4, 2, events.Position{Seq: 1})
	if z.Partitions() != 4 || z.Position(2).Seq != 1 {
		t.Fatalf("widened zero cursor = %s", z)
	}
}

// PartitionOf is part of the log's format: these values (checked against
// an independent FNV-1a) must never change.
func TestPartitionOfIsStable(t *testing.T) {
	tests := []struct {
		key  string
		n    int
		want int
	}{
		{"", 8, 5},
		{"drv-1", 8, 5},
		{"drv-2", 8, 4},
		{"trip-42", 8, 3},
		{"drv-1", 1, 0},
		{"drv-1", 0, 0},
	}
	for _, tt := range tests {
		if got := events.PartitionOf(tt.key, tt.n); got != tt.want {
			t.Errorf("PartitionOf(%q, %d) = %d, want %d", tt.key, tt.n, got, tt.want)
		}
	}
}

func TestPartitionOfSpreadsKeys(t *testing.T) {
	var counts [8]int
	for i := range 8000 {
		counts[events.PartitionOf("drv-"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+itoa(i), 8)]++
	}
	for p, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("partition %d got %d of 8000 keys", p, n)
		}
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

func TestEventID(t *testing.T) {
	a := events.EventID("fence", "drv-1", "sfo", "1700000000000")
	if a != events.EventID("fence", "drv-1", "sfo", "1700000000000") {
		t.Fatal("same parts, different ids")
	}
	if len(a) != 32 {
		t.Fatalf("id %q: %d chars, want 32", a, len(a))
	}
	if events.EventID("ab", "c") == events.EventID("a", "bc") || events.EventID("a", "") == events.EventID("a") {
		t.Fatal("ambiguous separators")
	}
	// The format is fixed, sinks deduplicate across releases: sha256(0x01 "x").
	if got, want := events.EventID("x"), "23c86a8aded0ad81f8111bb07e6ec0ff"; got != want {
		t.Errorf("EventID(\"x\") = %s, want %s", got, want)
	}
}

func TestTrimmedErrorNamesTheOldest(t *testing.T) {
	oldest := events.NewCursor([]events.Position{{Seq: 4}, {Seq: 9}})
	var err error = &events.TrimmedError{Oldest: oldest}
	err = errors.Join(errors.New("context"), err)
	var te *events.TrimmedError
	if !errors.As(err, &te) || !te.Oldest.Equal(oldest) || !errors.Is(err, events.ErrTrimmed) {
		t.Fatalf("errors.As/Is on %v", err)
	}
	if !strings.Contains(err.Error(), oldest.String()) || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("error %q does not name the oldest cursor", err)
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add("", 8)
	f.Add(events.Cursor{}.String(), 8)
	f.Add(events.NewCursor(make([]events.Position, 8)).String(), 8)
	f.Add(events.NewCursor([]events.Position{{Ms: 1 << 50, Seq: 3}, {Seq: 1 << 63}}).String(), 2)
	f.Add("c1CICAAA", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		c, err := events.ParseCursor(s, n)
		if err != nil {
			if !errors.Is(err, events.ErrBadCursor) {
				t.Fatalf("error %v is not ErrBadCursor", err)
			}
			return
		}
		// One string per cursor: what parses is what String gives.
		if got := c.String(); got != s {
			t.Fatalf("String(ParseCursor(%q)) = %q", s, got)
		}
		if c.Partitions() != 0 && c.Partitions() != n {
			t.Fatalf("parsed %d partitions for a log of %d", c.Partitions(), n)
		}
	})
}
