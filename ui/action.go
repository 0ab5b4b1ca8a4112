package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/geomatch/geomatch/internal/validate"
	"github.com/geomatch/geomatch/membership"
	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
	"github.com/geomatch/geomatch/shardmap"
)

// maxActionBytes bounds an action request's body.
const maxActionBytes = 4096

// actionRequest is the JSON body of /ui/api/plan and /ui/api/apply.
type actionRequest struct {
	// Action is "move", "unpin", "drain", "undrain", "split" or "merge".
	Action string `json:"action"`
	// Cell is the shard (move, unpin, split) or split cell (merge).
	Cell string `json:"cell,omitempty"`
	// Node is the target node (move) or the node (drain, undrain).
	Node string `json:"node,omitempty"`
	// Epoch is the ring epoch the plan was made at (apply only): an apply
	// at another epoch is refused, the plan being stale.
	Epoch uint64 `json:"epoch,omitempty"`
}

// action is a checked actionRequest: the admin RPC it calls and the ring
// change it makes.
type action struct {
	req actionRequest
	// method is the AdminService method's full name, and rpc its request.
	method string
	rpc    proto.Message
	// change is what the method does to the ring settings, for the plan.
	change membership.Change
	// what describes it ("move 872a1072bffffff to m2").
	what string
}

// parseAction decodes and checks an action request: a clear error naming
// the field, nothing else, on bad input.
func parseAction(body []byte) (action, error) {
	var req actionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return action{}, fmt.Errorf("request: not an action (JSON {\"action\", \"cell\", \"node\", \"epoch\"}): %w", err)
	}
	if dec.More() {
		return action{}, errors.New("request: more than one JSON value")
	}
	a := action{req: req}
	cell := func() (shardmap.Cell, error) {
		if req.Cell == "" {
			return 0, fmt.Errorf("cell: required for %s", req.Action)
		}
		return membership.ParseCell(req.Cell)
	}
	node := func() error {
		if err := validate.ID("node", req.Node); err != nil {
			return err
		}
		return nil
	}
	noNode := func() error {
		if req.Node != "" {
			return fmt.Errorf("node: %s takes no node", req.Action)
		}
		return nil
	}
	noCell := func() error {
		if req.Cell != "" {
			return fmt.Errorf("cell: %s takes no cell", req.Action)
		}
		return nil
	}
	switch req.Action {
	case "move":
		c, err := cell()
		if err != nil {
			return action{}, err
		}
		if err := node(); err != nil {
			return action{}, err
		}
		a.method, a.rpc = geomatchv1.AdminService_MoveShard_FullMethodName, &geomatchv1.MoveShardRequest{Cell: c.String(), NodeId: req.Node}
		a.change, a.what = membership.Move(c, req.Node), fmt.Sprintf("move %s to %s", c, req.Node)
	case "unpin", "split", "merge":
		c, err := cell()
		if err != nil {
			return action{}, err
		}
		if err := noNode(); err != nil {
			return action{}, err
		}
		switch req.Action {
		case "unpin":
			a.method, a.rpc, a.change = geomatchv1.AdminService_Unpin_FullMethodName, &geomatchv1.UnpinRequest{Cell: c.String()}, membership.Unpin(c)
		case "split":
			a.method, a.rpc, a.change = geomatchv1.AdminService_SplitShard_FullMethodName, &geomatchv1.SplitShardRequest{Cell: c.String()}, membership.Split(c)
		default:
			a.method, a.rpc, a.change = geomatchv1.AdminService_MergeShard_FullMethodName, &geomatchv1.MergeShardRequest{Cell: c.String()}, membership.Merge(c)
		}
		a.what = req.Action + " " + c.String()
	case "drain", "undrain":
		if err := node(); err != nil {
			return action{}, err
		}
		if err := noCell(); err != nil {
			return action{}, err
		}
		if req.Action == "drain" {
			a.method, a.rpc, a.change = geomatchv1.AdminService_DrainNode_FullMethodName, &geomatchv1.DrainNodeRequest{NodeId: req.Node}, membership.Drain(req.Node)
		} else {
			a.method, a.rpc, a.change = geomatchv1.AdminService_UndrainNode_FullMethodName, &geomatchv1.UndrainNodeRequest{NodeId: req.Node}, membership.Undrain(req.Node)
		}
		a.what = req.Action + " " + req.Node
	case "":
		return action{}, errors.New("action: required (move, unpin, drain, undrain, split, merge)")
	default:
		return action{}, fmt.Errorf("action: %q is none of move, unpin, drain, undrain, split, merge", req.Action)
	}
	return a, nil
}

// Plan is what an action would do to the ring: the dry run the page shows
// before it is applied.
type Plan struct {
	// Description says the action ("move 872a1072bffffff to m2").
	Description string `json:"description"`
	// Epoch is the ring epoch the plan was made at; apply names it.
	Epoch uint64 `json:"epoch"`
	// Moves are the shown shards that would change owner, or be replaced
	// (a split's children, a merged shard), with their drivers.
	Moves []PlannedMove `json:"moves"`
	// DriversMoved sums the drivers of Moves (as last reported).
	DriversMoved int64 `json:"drivers_moved"`
	// Note qualifies the plan.
	Note string `json:"note,omitempty"`
}

// PlannedMove is one shard of a Plan.
type PlannedMove struct {
	Cell    string `json:"cell"`
	Res     int    `json:"res"`
	From    string `json:"from"`
	To      string `json:"to"`
	Drivers int64  `json:"drivers"`
}

// planNote says what a plan is computed from.
const planNote = "computed by this router on a copy of the current ring; a Consul ring writer's bounded-load pass can place some shards differently"

// plan applies a's change to a copy of ring m, as the in-process
// membership does, and lists which of the shown shards (with their
// drivers) would get another owner or be replaced. The change's own
// refusal (*membership.ChangeError) is returned as is. Pure.
func plan(m *shardmap.Map, a action, shown map[shardmap.Cell]int64) (Plan, error) {
	old := m.Doc()
	s := membership.SettingsOf(old)
	if err := a.change(&s, m); err != nil {
		return Plan{}, err
	}
	doc, err := membership.Compose(s, old.Members, nil, old.Epoch+1)
	if err != nil {
		return Plan{}, fmt.Errorf("ring settings: %w", err)
	}
	if layout, err := shardmap.NewLayout(doc.ShardRes, doc.MaxSplitDepth, doc.Splits); err == nil {
		for c, id := range old.Overrides {
			if layout.IsShard(c) && !slices.Contains(doc.Drained, id) {
				if doc.Overrides == nil {
					doc.Overrides = map[shardmap.Cell]string{}
				}
				doc.Overrides[c] = id
			}
		}
	}
	after, err := shardmap.NewMap(doc)
	if err != nil {
		return Plan{}, fmt.Errorf("ring settings: %w", err)
	}
	p := Plan{Description: a.what, Epoch: m.Epoch(), Note: planNote}
	seen := map[shardmap.Cell]bool{}
	for _, c := range slices.SortedFunc(maps.Keys(shown), func(a, b shardmap.Cell) int { return cmp.Compare(a.String(), b.String()) }) {
		from := ""
		if o, ok := m.Owner(c); ok {
			from = o.ID
		}
		for _, t := range shardsOf(after.Layout(), c) {
			if seen[t] {
				continue
			}
			seen[t] = true
			to := ""
			if o, ok := after.Owner(t); ok {
				to = o.ID
			}
			if to == from && t == c {
				continue
			}
			drivers := int64(0)
			if t == c {
				drivers = shown[c]
			}
			p.Moves = append(p.Moves, PlannedMove{Cell: t.String(), Res: shardmap.Resolution(t), From: from, To: to, Drivers: drivers})
			p.DriversMoved += drivers
		}
	}
	if a.req.Action == "split" || a.req.Action == "merge" {
		// The shard itself may hold no drivers: show it anyway.
		if c, err := membership.ParseCell(a.req.Cell); err == nil && !seen[c] {
			from := ""
			if o, ok := m.Owner(c); ok {
				from = o.ID
			}
			for _, t := range shardsOf(after.Layout(), c) {
				if !seen[t] {
					to := ""
					if o, ok := after.Owner(t); ok {
						to = o.ID
					}
					p.Moves = append(p.Moves, PlannedMove{Cell: t.String(), Res: shardmap.Resolution(t), From: from, To: to})
				}
			}
		}
	}
	return p, nil
}
