package ui

import (
	"errors"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// TestParseAction checks each action's fields and that bad input is
// refused with an error naming the field.
func TestParseAction(t *testing.T) {
	cell := testShards(t)[0].String()
	tests := []struct {
		body   string
		method string // "" when refused
		field  string // the refusal's field
	}{
		{`{"action":"move","cell":"` + cell + `","node":"m2"}`, geomatchv1.AdminService_MoveShard_FullMethodName, ""},
		{`{"action":"unpin","cell":"` + cell + `"}`, geomatchv1.AdminService_Unpin_FullMethodName, ""},
		{`{"action":"split","cell":"` + cell + `"}`, geomatchv1.AdminService_SplitShard_FullMethodName, ""},
		{`{"action":"merge","cell":"` + cell + `"}`, geomatchv1.AdminService_MergeShard_FullMethodName, ""},
		{`{"action":"drain","node":"m1"}`, geomatchv1.AdminService_DrainNode_FullMethodName, ""},
		{`{"action":"undrain","node":"m1","epoch":7}`, geomatchv1.AdminService_UndrainNode_FullMethodName, ""},
		{``, "", "request"},
		{`[]`, "", "request"},
		{`{"action":"move","cell":"` + cell + `","node":"m2"} {}`, "", "request"},
		{`{"action":"move","cell":"` + cell + `","node":"m2","extra":1}`, "", "request"},
		{`{}`, "", "action"},
		{`{"action":"explode"}`, "", "action"},
		{`{"action":"move","node":"m2"}`, "", "cell"},
		{`{"action":"move","cell":"nothex","node":"m2"}`, "", "cell"},
		{`{"action":"move","cell":"` + cell + `"}`, "", "node"},
		{`{"action":"split","cell":"` + cell + `","node":"m2"}`, "", "node"},
		{`{"action":"drain"}`, "", "node"},
		{`{"action":"drain","node":"m1","cell":"` + cell + `"}`, "", "cell"},
		{`{"action":"drain","node":"` + strings.Repeat("x", 300) + `"}`, "", "node"},
	}
	for _, tc := range tests {
		a, err := parseAction([]byte(tc.body))
		if tc.method != "" {
			if err != nil || a.method != tc.method || a.rpc == nil || a.change == nil || a.what == "" {
				t.Errorf("%s: %+v, %v", tc.body, a, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want one naming %s", tc.body, err, tc.field)
		}
	}
}

// TestPlan checks the dry run of each action against the ring it would
// publish, and that a refused change is the membership's refusal.
func TestPlan(t *testing.T) {
	shards := testShards(t)
	m := ringOf(t, shardmap.DefaultDoc(testMembers))
	shown := map[shardmap.Cell]int64{}
	for i, c := range shards {
		shown[c] = int64(i + 1)
	}
	act := func(body string) action {
		a, err := parseAction([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	target := shards[4]
	o, _ := m.Owner(target)
	to := "m1"
	if o.ID == to {
		to = "m2"
	}
	p, err := plan(m, act(`{"action":"move","cell":"`+target.String()+`","node":"`+to+`"}`), shown)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 1 || p.Moves[0].Cell != target.String() || p.Moves[0].From != o.ID || p.Moves[0].To != to || p.DriversMoved != 5 || p.Epoch != 1 {
		t.Fatalf("move plan %+v", p)
	}

	p, err = plan(m, act(`{"action":"drain","node":"m1"}`), shown)
	if err != nil {
		t.Fatal(err)
	}
	var owned int64
	for c, n := range shown {
		if o, _ := m.Owner(c); o.ID == "m1" {
			owned += n
		}
	}
	if owned == 0 || p.DriversMoved != owned {
		t.Fatalf("drain plan moves %d drivers, m1 holds %d: %+v", p.DriversMoved, owned, p)
	}
	for _, mv := range p.Moves {
		if mv.From != "m1" || mv.To == "m1" {
			t.Fatalf("drain plan move %+v", mv)
		}
	}

	p, err = plan(m, act(`{"action":"split","cell":"`+shards[0].String()+`"}`), shown)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 7 || p.Moves[0].Res != 8 {
		t.Fatalf("split plan %+v", p)
	}

	_, err = plan(m, act(`{"action":"merge","cell":"`+shards[0].String()+`"}`), shown)
	var ce *membership.ChangeError
	if !errors.As(err, &ce) || ce.Field != "cell" {
		t.Fatalf("merge of an unsplit shard: %v", err)
	}
	if _, err := plan(m, act(`{"action":"move","cell":"`+target.String()+`","node":"m9"}`), shown); !errors.Is(err, membership.ErrInvalid) {
		t.Fatalf("move to an unknown node: %v", err)
	}
	if m.Epoch() != 1 {
		t.Fatal("planning changed the ring")
	}
}
