package router

import (
	"testing"

	"google.golang.org/protobuf/proto"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// withCursor's output is the event with its cursor set, as the client
// decodes it; a payload that does not frame, or that carries a cursor
// already, is refused.
func TestWithCursorIsTheEventWithItsCursor(t *testing.T) {
	ev := &geomatchv1.Event{EventId: "e1", TimeMs: 1700000000000, Payload: &geomatchv1.Event_Fence{Fence: &geomatchv1.FenceEvent{
		FenceId: "sfo", Set: "airports", DriverId: "d1", Detect: geomatchv1.FenceDetect_FENCE_DETECT_ENTER,
		Position: &geomatchv1.LatLng{Lat: 37.6, Lng: -122.4}, TimestampMs: 1700000000000,
	}}}
	payload, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := withCursor(payload, "c-123")
	if err != nil {
		t.Fatal(err)
	}
	var got geomatchv1.Event
	if err := proto.Unmarshal(msg, &got); err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(ev).(*geomatchv1.Event)
	want.Cursor = "c-123"
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded %v, want %v", &got, want)
	}
	if _, err := withCursor(payload[:len(payload)-3], "c"); err == nil {
		t.Fatal("a truncated payload was accepted")
	}
	if _, err := withCursor(msg, "c2"); err == nil {
		t.Fatal("a payload with a cursor was accepted")
	}
}
