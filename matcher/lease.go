package matcher

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Lease is the node's right to serve the shards the ring gives it (in a
// Consul cluster, membership.Lease: renewed by the node's health-check
// passes, or vouched for by its peers while Consul is down for all). A
// node whose lease lapsed answers no search and applies no update: it may
// have been cut off while the ring writer gave its shards to another node.
type Lease interface {
	// Valid reports whether the node may serve now, and why not.
	Valid() (ok bool, why string)
	// ConsulFresh reports whether the node's own Consul contact is fresh
	// (what Stats tells peers).
	ConsulFresh() bool
}

// checkLease refuses with UNAVAILABLE when the node's lease lapsed: the
// caller (a router's fleet client) holds its updates and leaves the
// node's shards out of answers until the ring moves them or the lease is
// renewed.
func (n *Node) checkLease() error {
	if n.cfg.Lease == nil {
		return nil
	}
	if ok, why := n.cfg.Lease.Valid(); !ok {
		n.count.leaseRefusals.Add(1)
		return status.Errorf(codes.Unavailable, "matcher %s: %s", n.cfg.NodeID, why)
	}
	return nil
}

// consulLease is Stats' ConsulLease: true without a lease (a node that is
// not in a Consul cluster vouches for nobody, but is not cut off either).
func (n *Node) consulLease() bool {
	return n.cfg.Lease == nil || n.cfg.Lease.ConsulFresh()
}
