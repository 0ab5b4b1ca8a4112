package matcherv1_test

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	matcherv1 "github.com/geomatch/geomatch/proto/geomatch/matcher/v1"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// The messages of the hot paths, at the sizes they travel: a nearby search
// (the public request and its 10 drivers; the router's internal request
// over 8 shards and a matcher's 10 neighbors) and a batch of 1,000 location
// updates (the public call and the internal Apply message).

func driverID(i int) string { return "bench-" + strconv.Itoa(1_000_000 + i)[1:] }

func nearbyRequest() *matcherv1.NearbyRequest {
	r := &matcherv1.NearbyRequest{Epoch: 42, Lat: 40.7549, Lng: -73.984, RadiusM: 2000, Limit: 10,
		Status: geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE}
	for i := range 8 {
		r.Shards = append(r.Shards, 0x872a1008fffffff+uint64(i)<<24)
	}
	return r
}

func nearbyResponse() *matcherv1.NearbyResponse {
	r := &matcherv1.NearbyResponse{Epoch: 42}
	for i := range 10 {
		r.Neighbors = append(r.Neighbors, &matcherv1.Neighbor{DriverId: driverID(i), Lat: 40.75 + float64(i)*1e-4,
			Lng: -73.98, DistanceM: 10.5 * float64(i), TimestampMs: 1764100000000, Status: geomatchv1.DriverStatus_DRIVER_STATUS_AVAILABLE})
	}
	return r
}

func nearbyDriversResponse() *geomatchv1.NearbyDriversResponse {
	r := &geomatchv1.NearbyDriversResponse{}
	for i := range 10 {
		r.Drivers = append(r.Drivers, &geomatchv1.NearbyDriver{DriverId: driverID(i),
			Position: &geomatchv1.LatLng{Lat: 40.75 + float64(i)*1e-4, Lng: -73.98}, DistanceM: 10.5 * float64(i), TimestampMs: 1764100000000})
	}
	return r
}

func updateLocationsRequest() *geomatchv1.UpdateLocationsRequest {
	r := &geomatchv1.UpdateLocationsRequest{}
	for i := range 1000 {
		r.Updates = append(r.Updates, &geomatchv1.LocationUpdate{DriverId: driverID(i),
			Position: &geomatchv1.LatLng{Lat: 40.6 + float64(i)*1e-4, Lng: -73.9}, TimestampMs: 1764100000000 + int64(i)})
	}
	return r
}

func applyRequest() *matcherv1.ApplyRequest {
	r := &matcherv1.ApplyRequest{Seq: 7, Epoch: 42}
	for i := range 1000 {
		r.Updates = append(r.Updates, &matcherv1.Update{DriverId: driverID(i), Lat: 40.6 + float64(i)*1e-4, Lng: -73.9,
			TimestampMs: 1764100000000 + int64(i), FineCell: 0x892a1008003ffff})
	}
	return r
}

// BenchmarkCodec marshals and unmarshals each message as gRPC's codec does
// (proto.Marshal into a new buffer, proto.Unmarshal into a new message).
// Per 1,000-update batch, divide by 1,000 for the cost per update.
func BenchmarkCodec(b *testing.B) {
	msgs := []struct {
		name string
		msg  proto.Message
	}{
		{"NearbyRequest", nearbyRequest()},
		{"NearbyResponse10", nearbyResponse()},
		{"NearbyDriversResponse10", nearbyDriversResponse()},
		{"UpdateLocationsRequest1000", updateLocationsRequest()},
		{"ApplyRequest1000", applyRequest()},
	}
	for _, m := range msgs {
		wire, err := proto.Marshal(m.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if _, err := proto.Marshal(m.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				out := m.msg.ProtoReflect().New().Interface()
				if err := proto.Unmarshal(wire, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
