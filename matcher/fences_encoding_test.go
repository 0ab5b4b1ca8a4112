package matcher

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/geomatch/geomatch/fence"
	"github.com/geomatch/geomatch/internal/geo"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// fenceEventMessage is the message appendFenceEvent encodes, built with
// the generated code.
func fenceEventMessage(id string, now int64, f *fence.Fence, detect geomatchv1.FenceDetect, driverID string, pos geo.LatLng, prev *geo.LatLng, tsMs int64, st geomatchv1.DriverStatus, class string) *geomatchv1.Event {
	fe := &geomatchv1.FenceEvent{
		FenceId: f.ID, Set: f.Set, DriverId: driverID, Detect: detect,
		Position:    &geomatchv1.LatLng{Lat: pos.Lat, Lng: pos.Lng},
		TimestampMs: tsMs, Status: st, VehicleClass: class, Labels: f.Labels,
	}
	if prev != nil {
		fe.Previous = &geomatchv1.LatLng{Lat: prev.Lat, Lng: prev.Lng}
	}
	return &geomatchv1.Event{EventId: id, TimeMs: now, Payload: &geomatchv1.Event_Fence{Fence: fe}}
}

// TestFenceEventEncoding: the hand-written encoding decodes to the message
// the generated code builds, for zero and set values of every field, and
// the field numbers it uses are the generated ones.
func TestFenceEventEncoding(t *testing.T) {
	fields := func(m protoreflect.ProtoMessage) protoreflect.FieldDescriptors {
		return m.ProtoReflect().Descriptor().Fields()
	}
	for _, c := range []struct {
		m    protoreflect.ProtoMessage
		name protoreflect.Name
		num  protowire.Number
	}{
		{&geomatchv1.Event{}, "event_id", evEventID}, {&geomatchv1.Event{}, "time_ms", evTimeMs}, {&geomatchv1.Event{}, "fence", evFence},
		{&geomatchv1.FenceEvent{}, "fence_id", feFenceID}, {&geomatchv1.FenceEvent{}, "set", feSet}, {&geomatchv1.FenceEvent{}, "driver_id", feDriverID},
		{&geomatchv1.FenceEvent{}, "detect", feDetect}, {&geomatchv1.FenceEvent{}, "position", fePosition}, {&geomatchv1.FenceEvent{}, "previous", fePrevious},
		{&geomatchv1.FenceEvent{}, "timestamp_ms", feTimestampMs}, {&geomatchv1.FenceEvent{}, "status", feStatus},
		{&geomatchv1.FenceEvent{}, "vehicle_class", feVehicleClass}, {&geomatchv1.FenceEvent{}, "labels", feLabels},
		{&geomatchv1.LatLng{}, "lat", llLat}, {&geomatchv1.LatLng{}, "lng", llLng},
	} {
		if got := fields(c.m).ByName(c.name).Number(); got != c.num {
			t.Fatalf("%s.%s is field %d, the encoder uses %d", c.m.ProtoReflect().Descriptor().Name(), c.name, got, c.num)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	str, coord := randomValues(r, 200)
	var buf []byte
	for i := range 2000 {
		f := &fence.Fence{ID: str(), Set: str()}
		if r.IntN(2) == 0 {
			f.Labels = map[string]string{}
			for range r.IntN(5) {
				f.Labels[str()] = str()
			}
		}
		pos := geo.LatLng{Lat: coord(90), Lng: coord(180)}
		var prev *geo.LatLng
		if r.IntN(2) == 0 {
			prev = &geo.LatLng{Lat: coord(90), Lng: coord(180)}
		}
		id, now, tsMs := str(), int64(r.IntN(3))*r.Int64(), int64(r.IntN(3))*r.Int64()
		detect, st := geomatchv1.FenceDetect(r.IntN(6)), geomatchv1.DriverStatus(r.IntN(5))
		driverID, class := str(), str()
		start := len(buf)
		buf = appendFenceEvent(buf, id, now, f, detect, driverID, pos, prev, tsMs, st, class)
		var got geomatchv1.Event
		if err := proto.Unmarshal(buf[start:], &got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want := fenceEventMessage(id, now, f, detect, driverID, pos, prev, tsMs, st, class)
		if !proto.Equal(&got, want) {
			t.Fatalf("case %d: decoded %v, want %v", i, &got, want)
		}
		if wantLen := proto.Size(want); len(buf)-start != wantLen {
			t.Fatalf("case %d: %d bytes, proto.Size says %d", i, len(buf)-start, wantLen)
		}
	}
}

// TestDriverEventEncoding: the hand-written encoding of a lifecycle event
// decodes to the message the generated code builds, byte for byte as
// long, for zero and set values of every field, across a shared buffer;
// the field numbers it uses are the generated ones.
func TestDriverEventEncoding(t *testing.T) {
	for _, c := range []struct {
		m    protoreflect.ProtoMessage
		name protoreflect.Name
		num  protowire.Number
	}{
		{&geomatchv1.Event{}, "driver", evDriver},
		{&geomatchv1.DriverLifecycleEvent{}, "driver_id", dlDriverID}, {&geomatchv1.DriverLifecycleEvent{}, "lifecycle", dlLifecycle},
		{&geomatchv1.DriverLifecycleEvent{}, "position", dlPosition}, {&geomatchv1.DriverLifecycleEvent{}, "timestamp_ms", dlTimestampMs},
		{&geomatchv1.DriverLifecycleEvent{}, "vehicle_class", dlVehicleClass},
	} {
		if got := c.m.ProtoReflect().Descriptor().Fields().ByName(c.name).Number(); got != c.num {
			t.Fatalf("%s.%s is field %d, the encoder uses %d", c.m.ProtoReflect().Descriptor().Name(), c.name, got, c.num)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	str, coord := randomValues(r, 300) // past 127 bytes the lengths take two varint bytes
	var buf []byte
	type span struct{ start, end int }
	var spans []span
	var wants []*geomatchv1.Event
	for range 2000 {
		id, now, tsMs := str(), int64(r.IntN(3))*r.Int64(), int64(r.IntN(3))*r.Int64()
		driverID, class := str(), str()
		l := geomatchv1.DriverLifecycle(r.IntN(5))
		pos := geo.LatLng{Lat: coord(90), Lng: coord(180)}
		start := len(buf)
		buf = appendDriverEvent(buf, id, now, driverID, l, pos, tsMs, class)
		spans = append(spans, span{start, len(buf)})
		wants = append(wants, &geomatchv1.Event{EventId: id, TimeMs: now, Payload: &geomatchv1.Event_Driver{Driver: &geomatchv1.DriverLifecycleEvent{
			DriverId: driverID, Lifecycle: l, Position: &geomatchv1.LatLng{Lat: pos.Lat, Lng: pos.Lng}, TimestampMs: tsMs, VehicleClass: class,
		}}})
	}
	// Decoded after the whole buffer is written: an earlier event is not
	// disturbed by the ones after it.
	for i, sp := range spans {
		var got geomatchv1.Event
		if err := proto.Unmarshal(buf[sp.start:sp.end], &got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !proto.Equal(&got, wants[i]) {
			t.Fatalf("case %d: decoded %v, want %v", i, &got, wants[i])
		}
		if n := proto.Size(wants[i]); sp.end-sp.start != n {
			t.Fatalf("case %d: %d bytes, proto.Size says %d", i, sp.end-sp.start, n)
		}
	}
}

// randomValues returns generators of the encoders' inputs drawn from r:
// strings (a third empty, else up to maxLen letters) and coordinates (a
// quarter 0, else uniform in [-lim, lim]).
func randomValues(r *rand.Rand, maxLen int) (str func() string, coord func(lim float64) float64) {
	str = func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		b := make([]byte, r.IntN(maxLen))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	coord = func(lim float64) float64 {
		if r.IntN(4) == 0 {
			return 0
		}
		return (r.Float64()*2 - 1) * lim
	}
	return str, coord
}
