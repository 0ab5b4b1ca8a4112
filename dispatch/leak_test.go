package dispatch_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine started by them is
// still running once they are done: every goroutine has an owner that
// stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
