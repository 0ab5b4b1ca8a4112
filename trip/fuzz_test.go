package trip

import (
	"reflect"
	"testing"
)

// bytePicker turns fuzzer bytes into choices; once they run out it picks 0.
type bytePicker struct{ data []byte }

// pick returns a choice in [0, n) from the next byte.
func (b *bytePicker) pick(n int) int {
	if len(b.data) == 0 || n <= 1 {
		return 0
	}
	v := int(b.data[0])
	b.data = b.data[1:]
	return v % n
}

// FuzzStep drives a trip through an event sequence built from the fuzzer's
// bytes and checks every step as the property test does.
func FuzzStep(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{5, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 5, 2, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte("offer accept pick up complete, cancel, give up, decline, expire"))
	f.Add(make([]byte, 200))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		b := &bytePicker{data: data}
		g := &eventGen{pick: b.pick, clock: t0}
		tr := newTrip()
		for len(b.data) > 0 {
			e := g.next(tr)
			snapshot := tr.Clone()
			next, err := tr.Step(e)
			if !reflect.DeepEqual(tr, snapshot) {
				t.Fatalf("Step modified its receiver")
			}
			checkStep(t, tr, e, next, err)
			tr = next
		}
		// Whatever the sequence, the trip is a record the store can keep.
		rec, err := tr.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Unmarshal(rec)
		if err != nil || !reflect.DeepEqual(back, tr) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, back, tr)
		}
	})
}

// FuzzUnmarshal feeds arbitrary bytes to Unmarshal: it never panics, and
// whatever it accepts is a valid trip that encodes back to itself.
func FuzzUnmarshal(f *testing.F) {
	for s := StateRequested; s <= StateNoDriver; s++ {
		tr := tripIn(f, s)
		if s == StateRequested {
			tr = mustStep(f, tr, offerEv("d1", "o1", 1), declineEv("d1", "o1", 2))
		}
		rec, err := tr.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Add([]byte(`{"v":1,"id":"t","pickup":{"lat":0,"lng":0},"dropoff":{"lat":0,"lng":0},"state":"state(9)"}`))
	f.Add([]byte(`{"v":1,"id":"t","state":"requested","tried":["a",""],"attempts":2}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"v":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Unmarshal(data)
		if err != nil {
			return
		}
		if !tr.State.valid() {
			t.Fatalf("accepted state %v", tr.State)
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("accepted an invalid trip: %v", err)
		}
		rec, err := tr.Marshal()
		if err != nil {
			t.Fatalf("cannot re-encode an accepted trip: %v", err)
		}
		back, err := Unmarshal(rec)
		if err != nil || !reflect.DeepEqual(back, tr) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, back, tr)
		}
	})
}
