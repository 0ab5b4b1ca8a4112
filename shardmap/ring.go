package shardmap

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Limits of a ring, so a bad document cannot make a router build a ring of
// billions of points.
const (
	// MaxVNodes is the largest vnodesPerMember NewRing accepts.
	MaxVNodes = 4096
	// MaxWeight is the largest member weight NewRing accepts.
	MaxWeight = 1000
	// MaxMemberIDLen is the longest member id, in bytes.
	MaxMemberIDLen = 256
	// maxRingPoints bounds the total number of virtual nodes.
	maxRingPoints = 1 << 20
)

// Member is one matcher node of the cluster.
type Member struct {
	// ID names the member; unique, non-empty, at most MaxMemberIDLen bytes.
	// Placement hashes it, so a member keeps its shards across restarts and
	// address changes.
	ID string `json:"id"`
	// Addr is the host:port of the member's gRPC server.
	Addr string `json:"addr"`
	// Weight is the member's relative capacity: it gets about Weight times
	// the shards of a weight-1 member. 0 means 1; negative is refused.
	Weight float64 `json:"weight"`
}

// weight returns the effective weight (0 means 1).
func (m Member) weight() float64 {
	if m.Weight == 0 {
		return 1
	}
	return m.Weight
}

// Ring places keys (shard cells) on members by consistent hashing with
// weighted virtual nodes: member m gets round(vnodesPerMember*weight) points
// (at least one) on a 64-bit circle, and a key belongs to the first point at
// or after the key's hash. Adding a member only moves keys to it; removing
// one only moves its keys away.
//
// Placement depends only on the member ids and weights and the vnode count,
// never on their order, the process or the Go version: hashes are FNV-1a 64
// with a splitmix64 finalizer. A Ring is immutable and safe for concurrent
// use.
type Ring struct {
	members []Member // sorted by id
	points  []ringPoint
}

// ringPoint is one virtual node.
type ringPoint struct {
	hash   uint64
	member int32 // index into Ring.members
}

// NewRing builds the ring of members with vnodesPerMember virtual nodes per
// unit of weight. It refuses empty, oversized or duplicate ids, negative,
// NaN, infinite or oversized weights, and vnodesPerMember outside
// [1, MaxVNodes]. An empty member list gives an empty ring.
func NewRing(members []Member, vnodesPerMember int) (*Ring, error) {
	ms, total, err := checkMembers(members, vnodesPerMember)
	if err != nil {
		return nil, err
	}
	r := &Ring{members: ms, points: make([]ringPoint, 0, total)}
	for i, m := range ms {
		for v := range vnodeCount(m, vnodesPerMember) {
			r.points = append(r.points, ringPoint{hash: vnodeHash(m.ID, v), member: int32(i)})
		}
	}
	// Ties between hashes (astronomically rare) go to the smaller id, so the
	// order is total and the same everywhere.
	slices.SortFunc(r.points, func(a, b ringPoint) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.member, b.member))
	})
	return r, nil
}

// checkMembers validates members and vnodesPerMember for NewRing and
// returns the members sorted by id and their total number of virtual nodes.
func checkMembers(members []Member, vnodesPerMember int) ([]Member, int, error) {
	if vnodesPerMember < 1 || vnodesPerMember > MaxVNodes {
		return nil, 0, fmt.Errorf("vnodes per member %d: must be within [1, %d]", vnodesPerMember, MaxVNodes)
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	total := 0
	for i, m := range ms {
		switch {
		case m.ID == "":
			return nil, 0, fmt.Errorf("member with addr %q: empty id", m.Addr)
		case len(m.ID) > MaxMemberIDLen:
			return nil, 0, fmt.Errorf("member %.32q...: id longer than %d bytes", m.ID, MaxMemberIDLen)
		case i > 0 && ms[i-1].ID == m.ID:
			return nil, 0, fmt.Errorf("member %q: duplicate id", m.ID)
		case math.IsNaN(m.Weight) || m.Weight < 0 || m.Weight > MaxWeight:
			return nil, 0, fmt.Errorf("member %q: weight %v must be within [0, %d] (0 means 1)", m.ID, m.Weight, MaxWeight)
		}
		total += vnodeCount(m, vnodesPerMember)
	}
	if total > maxRingPoints {
		return nil, 0, fmt.Errorf("ring of %d members: %d virtual nodes, more than %d", len(ms), total, maxRingPoints)
	}
	return ms, total, nil
}

// vnodeCount is round(vnodes*weight), at least 1.
func vnodeCount(m Member, vnodes int) int {
	return max(1, int(math.Round(float64(vnodes)*m.weight())))
}

// Owner returns the id of the member owning key, "" when the ring is empty.
// It costs one hash and a binary search, and does not allocate.
func (r *Ring) Owner(key Cell) string {
	i := r.ownerIndex(key)
	if i < 0 {
		return ""
	}
	return r.members[i].ID
}

// ownerIndex returns the index in r.members of key's owner, -1 when the
// ring is empty.
func (r *Ring) ownerIndex(key Cell) int {
	if len(r.points) == 0 {
		return -1
	}
	h := keyHash(key)
	i, _ := slices.BinarySearchFunc(r.points, h, func(p ringPoint, h uint64) int { return cmp.Compare(p.hash, h) })
	if i == len(r.points) {
		i = 0 // wrap around the circle
	}
	return int(r.points[i].member)
}

// Members returns the ring's members sorted by id, as a new slice.
func (r *Ring) Members() []Member { return slices.Clone(r.members) }

// FNV-1a 64 parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// splitmix64 is the finalizer of the SplitMix64 generator: a bijection that
// spreads every input bit over the whole output, so FNV's weak high bits
// and sequential cell ids land uniformly on the circle.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// vnodeHash is the position of virtual node v of member id:
// splitmix64(FNV-1a 64 of "id#v").
func vnodeHash(id string, v int) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * fnvPrime
	}
	h = (h ^ '#') * fnvPrime
	var buf [20]byte
	for _, b := range strconv.AppendInt(buf[:0], int64(v), 10) {
		h = (h ^ uint64(b)) * fnvPrime
	}
	return splitmix64(h)
}

// keyHash is the position of a key: splitmix64 of FNV-1a 64 over the 8
// little-endian bytes of the cell index.
func keyHash(c Cell) uint64 {
	h := uint64(fnvOffset)
	u := uint64(c)
	for i := 0; i < 8; i++ {
		h = (h ^ (u >> (8 * i) & 0xff)) * fnvPrime
	}
	return splitmix64(h)
}
