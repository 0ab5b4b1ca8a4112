package chaos

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestScheduleIsSeededAndWithinTheRun(t *testing.T) {
	for _, sc := range Scenarios {
		cfg := ScheduleConfig{Scenario: sc, Duration: 3 * time.Minute, Matchers: 3, Seed: 7, Faults: 20}
		a, err := Schedule(cfg)
		if err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		b, _ := Schedule(cfg)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: the same seed gave two schedules", sc)
		}
		for i, f := range a {
			if f.At < warmup || f.At+f.For > cfg.Duration-tail+time.Second {
				t.Errorf("%s: fault %d (%+v) outside the run's middle", sc, i, f)
			}
			if i > 0 && f.At <= a[i-1].At+a[i-1].For {
				t.Errorf("%s: fault %d begins before fault %d is undone", sc, i, i-1)
			}
			if f.Node != "" && (f.Node < "m1" || f.Node > "m3") {
				t.Errorf("%s: fault %d hits %q", sc, i, f.Node)
			}
		}
	}
	k, _ := Schedule(ScheduleConfig{Scenario: "kill", Duration: 3 * time.Minute, Matchers: 3, Seed: 7, Faults: 20})
	if len(k) != 20 {
		t.Fatalf("kill: %d faults, want 20", len(k))
	}
	other, _ := Schedule(ScheduleConfig{Scenario: "kill", Duration: 3 * time.Minute, Matchers: 3, Seed: 8, Faults: 20})
	if reflect.DeepEqual(k, other) {
		t.Fatal("two seeds gave the same schedule")
	}
}

func TestScheduleRejectsBadConfig(t *testing.T) {
	cases := []struct {
		cfg  ScheduleConfig
		want string
	}{
		{ScheduleConfig{Scenario: "nope", Duration: time.Minute, Matchers: 3}, "--scenario"},
		{ScheduleConfig{Scenario: "kill", Duration: time.Minute, Matchers: 1}, "--matchers"},
		{ScheduleConfig{Scenario: "kill", Duration: 20 * time.Second, Matchers: 3, Faults: 20}, "--duration"},
		{ScheduleConfig{Scenario: "partition", Duration: 20 * time.Second, Matchers: 3}, "--duration"},
		{ScheduleConfig{Scenario: "blips", Duration: 20 * time.Second, Matchers: 3}, "--duration"},
		{ScheduleConfig{Scenario: "drain", Duration: 20 * time.Second, Matchers: 3}, "--duration"},
	}
	for _, c := range cases {
		if _, err := Schedule(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.want)
		}
	}
}
