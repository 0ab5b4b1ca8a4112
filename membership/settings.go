package membership

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/geomatch/geomatch/shardmap"
)

// Settings are the operator's intent for the ring, kept in Consul KV next
// to the ring document: placement parameters and the manual changes made
// with `geomatch admin` (pins, drains, splits, weights). The ring writer
// turns Settings plus the healthy matchers into the next ring document
// (Compose); operators never write the ring document itself.
type Settings struct {
	// ShardRes, MaxSplitDepth and VNodes are the shardmap.Doc fields of
	// the same names. They are chosen once per cluster.
	ShardRes      int `json:"shard_res"`
	MaxSplitDepth int `json:"max_split_depth"`
	VNodes        int `json:"vnodes"`
	// Balance is the bounded-load factor (shardmap.BoundedLoad): no
	// matcher gets more than Balance times its share of the shards that
	// hold drivers. 0 turns bounded load off (pure consistent hashing).
	Balance float64 `json:"balance"`
	// Splits, Pins and Drained are the shardmap.Doc fields of the same
	// names. A pin or drain naming a matcher that is not healthy is kept
	// here but left out of the document until the matcher is back.
	Splits  []shardmap.Cell          `json:"splits,omitempty"`
	Pins    map[shardmap.Cell]string `json:"pins,omitempty"`
	Drained []string                 `json:"drained,omitempty"`
	// Weights override a matcher's own weight (registered in its service
	// metadata).
	Weights map[string]float64 `json:"weights,omitempty"`
	// Generation is bumped by `geomatch admin rebalance --apply` and other
	// changes that must make the writer recompute even when nothing else
	// changed.
	Generation uint64 `json:"generation"`
}

// DefaultSettings returns settings for a ring with the shardmap defaults
// and bounded load at shardmap.DefaultBalance.
func DefaultSettings() Settings {
	return Settings{
		ShardRes:      shardmap.DefaultShardRes,
		MaxSplitDepth: shardmap.DefaultMaxSplitDepth,
		VNodes:        shardmap.DefaultVNodes,
		Balance:       shardmap.DefaultBalance,
	}
}

// Clone returns a deep copy of s.
func (s Settings) Clone() Settings {
	s.Splits = slices.Clone(s.Splits)
	s.Pins = maps.Clone(s.Pins)
	s.Drained = slices.Clone(s.Drained)
	s.Weights = maps.Clone(s.Weights)
	return s
}

// Validate reports why s cannot produce a ring: a bad layout, vnode count
// or balance, or a weight out of range.
func (s Settings) Validate() error {
	if _, err := shardmap.NewLayout(s.ShardRes, s.MaxSplitDepth, s.Splits); err != nil {
		return fmt.Errorf("ring settings: %w", err)
	}
	if s.VNodes < 1 || s.VNodes > shardmap.MaxVNodes {
		return fmt.Errorf("ring settings: vnodes %d must be within [1, %d]", s.VNodes, shardmap.MaxVNodes)
	}
	if s.Balance != 0 && !(s.Balance >= 1 && s.Balance <= 10) {
		return fmt.Errorf("ring settings: balance %v must be 0 (off) or within [1, 10]", s.Balance)
	}
	for id, w := range s.Weights {
		if !(w > 0 && w <= shardmap.MaxWeight) {
			return fmt.Errorf("ring settings: weight of %q is %v, must be within (0, %d]", id, w, shardmap.MaxWeight)
		}
	}
	return nil
}

// Compose builds the ring document for the healthy matchers under s, at
// the given epoch. Pins and drains of matchers that are not healthy are
// left out (a dead matcher's pinned shards go back to the ring). With
// bounded load on, active (the shards holding drivers) is balanced. Pure:
// the same inputs give the same document.
func Compose(s Settings, healthy []shardmap.Member, active []shardmap.Cell, epoch uint64) (shardmap.Doc, error) {
	if err := s.Validate(); err != nil {
		return shardmap.Doc{}, err
	}
	members := slices.Clone(healthy)
	slices.SortFunc(members, func(a, b shardmap.Member) int { return cmp.Compare(a.ID, b.ID) })
	ids := map[string]bool{}
	for i := range members {
		ids[members[i].ID] = true
		if w, ok := s.Weights[members[i].ID]; ok {
			members[i].Weight = w
		}
	}
	d := shardmap.Doc{
		Epoch:         epoch,
		ShardRes:      s.ShardRes,
		MaxSplitDepth: s.MaxSplitDepth,
		VNodes:        s.VNodes,
		Members:       members,
		Splits:        slices.Clone(s.Splits),
	}
	drained := map[string]bool{}
	for _, id := range s.Drained {
		if ids[id] && !drained[id] {
			drained[id] = true
			d.Drained = append(d.Drained, id)
		}
	}
	slices.Sort(d.Drained)
	layout, err := shardmap.NewLayout(s.ShardRes, s.MaxSplitDepth, s.Splits)
	if err != nil {
		return shardmap.Doc{}, fmt.Errorf("ring settings: %w", err)
	}
	for c, id := range s.Pins {
		if ids[id] && !drained[id] && layout.IsShard(c) {
			if d.Pins == nil {
				d.Pins = map[shardmap.Cell]string{}
			}
			d.Pins[c] = id
		}
	}
	if s.Balance >= 1 && len(active) > 0 {
		over, err := shardmap.BoundedLoad(d, active, s.Balance)
		if err != nil {
			return shardmap.Doc{}, err
		}
		d.Overrides = over
	}
	if err := d.Validate(); err != nil {
		return shardmap.Doc{}, err
	}
	return d, nil
}

// Record is the value of the ring key in Consul: the document and where it
// came from.
type Record struct {
	// Doc is the ring document.
	Doc shardmap.Doc `json:"doc"`
	// Writer is the member id of the writer that wrote it.
	Writer string `json:"writer"`
	// SettingsIndex is the Consul modify index of the settings it was
	// composed from: an admin command that changed the settings waits for
	// a record with at least its index.
	SettingsIndex uint64 `json:"settings_index"`
	// Reason says why it was written ("matchers changed", "settings
	// changed", ...).
	Reason string `json:"reason"`
	// WrittenAt is when it was written.
	WrittenAt time.Time `json:"written_at"`
	// Active are the shards that held drivers by the writer's census when
	// it was written (the bounded-load placement's input). A writer
	// elected after it takes those of members it cannot reach from here.
	Active []shardmap.Cell `json:"active,omitempty"`
}

// sameMembers reports whether two documents have the same members (ids,
// addresses, weights) and drained members.
func sameMembers(a, b shardmap.Doc) bool {
	return slices.Equal(a.Members, b.Members) && slices.Equal(a.Drained, b.Drained)
}

// sameRing reports whether two documents place everything the same way
// (everything but the epoch is equal).
func sameRing(a, b shardmap.Doc) bool {
	a.Epoch, b.Epoch = 0, 0
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
