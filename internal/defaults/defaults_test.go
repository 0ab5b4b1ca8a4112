package defaults

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestZeroIsDefaultNegativeIsError is the rule, field kind by field kind.
func TestZeroIsDefaultNegativeIsError(t *testing.T) {
	var f Filler
	d, i, x := time.Duration(0), 0, 0.0
	f.Duration("D", &d, time.Second)
	f.Int("I", &i, 7)
	f.Float("X", &x, 1.5)
	if d != time.Second || i != 7 || x != 1.5 || f.Err("cfg") != nil {
		t.Fatalf("zero fields: %v %v %v %v", d, i, x, f.Err("cfg"))
	}
	set := time.Duration(3)
	f.Duration("D", &set, time.Second)
	if set != 3 || f.Err("cfg") != nil {
		t.Fatalf("a set field changed: %v", set)
	}
	nd, ni, nx, nan := -time.Second, -1, -0.5, math.NaN()
	f.Duration("D", &nd, time.Second)
	f.Int("I", &ni, 7)
	f.Float("X", &nx, 1.5)
	f.Float("N", &nan, 1)
	f.Max("M", 11, 10)
	err := f.Err("cfg")
	for _, name := range []string{"cfg: ", "D: -1s", "I: -1", "X: -0.5", "N: must be a number", "M: 11, at most 10"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v lacks %q", err, name)
		}
	}
	if nd != -time.Second || ni != -1 {
		t.Error("a negative field was replaced")
	}
}
