package resp

import "testing"

// TestFrameScanFollowsSplitFrames: framing split across reads, one byte at
// a time, is followed to each command's end.
func TestFrameScanFollowsSplitFrames(t *testing.T) {
	var s frameScan
	whole := "*3\r\n$3\r\nSET\r\n$5\r\nfleet\r\n$1\r\na\r\nPING\r\n*2\r\n$4\r\nPING\r\n$0\r\n\r\n"
	for i := range len(whole) { // one byte at a time
		if err := s.feed([]byte(whole[i:i+1]), 1<<20); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	if s.state != scanStart {
		t.Fatalf("after whole commands the scan is in state %d, want at a command's start", s.state)
	}
}
