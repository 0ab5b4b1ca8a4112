package loadgen

import "testing"

func TestCheckLoopbackAcceptsOnlyThisMachine(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:50051", true},
		{"127.3.4.5:6379", true},
		{"localhost:6379", true},
		{"[::1]:9851", true},
		{"10.0.0.1:6379", false},
		{"0.0.0.0:6379", false},
		{"[::]:6379", false},
		{"example.com:6379", false},
		{"127.0.0.1", false}, // no port
	}
	for _, tt := range tests {
		err := CheckLoopback(tt.addr)
		if (err == nil) != tt.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

func TestTargetsRefuseRemoteAddresses(t *testing.T) {
	if _, err := NewGRPCTarget("10.0.0.1:50051"); err == nil {
		t.Error("NewGRPCTarget accepted 10.0.0.1")
	}
	if _, err := NewRESPTarget("10.0.0.1:6379", RedisGEO, 10); err == nil {
		t.Error("NewRESPTarget accepted 10.0.0.1")
	}
}
