package loadgen

import (
	"context"
	"fmt"
	"net"
	"time"
)

// resolveTimeout bounds the name lookup of CheckLoopback.
const resolveTimeout = 2 * time.Second

// CheckLoopback accepts a host:port whose host is a loopback address
// (127.0.0.0/8 or ::1) or a name that resolves only to loopback addresses,
// and refuses everything else: the load generator never targets another
// machine.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("target %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("target %q: %s is not a loopback address (127.0.0.0/8 or ::1); the load generator only targets this machine", addr, ip)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("target %q: resolve %s: %w (the load generator only targets loopback)", addr, host, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("target %q: %s resolves to no address", addr, host)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("target %q: %s resolves to %s, not a loopback address (127.0.0.0/8 or ::1); the load generator only targets this machine", addr, host, ip.IP)
		}
	}
	return nil
}
