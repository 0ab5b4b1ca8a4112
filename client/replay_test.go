package client

import (
	"math/rand/v2"
	"slices"
	"testing"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

func tsOf(q *unacked) []int64 {
	var out []int64
	for i := range q.len() {
		out = append(out, q.at(i).GetTimestampMs())
	}
	return out
}

func upd(ts int64) *geomatchv1.LocationUpdate { return &geomatchv1.LocationUpdate{TimestampMs: ts} }

// TestUnackedRules: the replay buffer keeps un-acknowledged updates in
// order, drops the oldest when full, forgets what an ack or a rejection
// covers, and replays the newest (or all).
func TestUnackedRules(t *testing.T) {
	type op struct {
		add, ack, reject int64
	}
	for _, tc := range []struct {
		name    string
		limit   int
		ops     []op
		want    []int64
		dropped int64
		newest  int64 // 0: nothing to replay
	}{
		{"keeps in order", 4, []op{{add: 1}, {add: 2}, {add: 3}}, []int64{1, 2, 3}, 0, 3},
		{"full drops the oldest", 3, []op{{add: 1}, {add: 2}, {add: 3}, {add: 4}, {add: 5}}, []int64{3, 4, 5}, 2, 5},
		{"ack removes the covered prefix", 4, []op{{add: 1}, {add: 2}, {add: 3}, {ack: 2}}, []int64{3}, 0, 3},
		{"ack of everything empties", 4, []op{{add: 1}, {add: 2}, {ack: 9}}, nil, 0, 0},
		{"ack below everything keeps all", 4, []op{{add: 5}, {add: 6}, {ack: 4}}, []int64{5, 6}, 0, 6},
		{"ack covers out-of-order updates too", 4, []op{{add: 5}, {add: 2}, {add: 7}, {ack: 5}}, []int64{7}, 0, 7},
		{"reject removes one from the middle", 4, []op{{add: 1}, {add: 2}, {add: 3}, {reject: 2}}, []int64{1, 3}, 0, 3},
		{"reject of an unknown one changes nothing", 4, []op{{add: 1}, {reject: 8}}, []int64{1}, 0, 1},
		{"wraps around the ring", 3, []op{{add: 1}, {add: 2}, {add: 3}, {ack: 2}, {add: 4}, {add: 5}, {reject: 4}}, []int64{3, 5}, 0, 5},
		{"empty replays nothing", 2, nil, nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newUnacked(tc.limit)
			for _, o := range tc.ops {
				switch {
				case o.add != 0:
					q.add(upd(o.add))
				case o.ack != 0:
					q.ack(o.ack)
				default:
					q.reject(o.reject)
				}
			}
			if got := tsOf(q); !slices.Equal(got, tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
			if q.dropped != tc.dropped {
				t.Fatalf("dropped %d, want %d", q.dropped, tc.dropped)
			}
			r := q.replay(true)
			switch {
			case tc.newest == 0 && len(r) != 0:
				t.Fatalf("replay %v, want nothing", r)
			case tc.newest != 0 && (len(r) != 1 || r[0].GetTimestampMs() != tc.newest):
				t.Fatalf("replay newest %v, want %d", r, tc.newest)
			}
			var all []int64
			for _, u := range q.replay(false) {
				all = append(all, u.GetTimestampMs())
			}
			if !slices.Equal(all, tc.want) {
				t.Fatalf("replay all %v, want %v", all, tc.want)
			}
		})
	}
}

// TestUnackedMatchesModel: random adds, acks and rejections leave the
// buffer as a plain slice model would (the last limit updates not
// covered), and never more than limit.
func TestUnackedMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		limit := 1 + r.IntN(8)
		q := newUnacked(limit)
		var model []int64
		for step := 0; step < 100; step++ {
			ts := int64(r.IntN(50))
			switch r.IntN(4) {
			case 0, 1:
				q.add(upd(ts))
				model = append(model, ts)
				if len(model) > limit {
					model = model[1:]
				}
			case 2:
				q.ack(ts)
				model = slices.DeleteFunc(model, func(v int64) bool { return v <= ts })
			case 3:
				q.reject(ts)
				model = slices.DeleteFunc(model, func(v int64) bool { return v == ts })
			}
			if got := tsOf(q); !slices.Equal(got, model) {
				t.Fatalf("round %d step %d: kept %v, model %v", round, step, got, model)
			}
		}
	}
}
