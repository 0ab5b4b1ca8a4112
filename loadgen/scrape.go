package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The Go runtime series a geomatch process exports on /metrics (see
// internal/metrics): the runtime's estimates of CPU seconds spent in the
// garbage collector and in all, and the heap the last collection found
// live.
const (
	seriesGCCPU    = "go_cpu_classes_gc_total_cpu_seconds_total"
	seriesTotalCPU = "go_cpu_classes_total_cpu_seconds_total"
	seriesLiveHeap = "go_gc_heap_live_bytes"
)

// maxScrapeBytes bounds what a scrape reads of a /metrics answer.
const maxScrapeBytes = 16 << 20

// runtimeSample is one reading of a Go server's runtime series.
type runtimeSample struct {
	gcCPU, totalCPU float64
	live            uint64
}

// scrapeRuntime reads the Go runtime series from a Prometheus text
// endpoint (url, on loopback), within 2 s.
func scrapeRuntime(ctx context.Context, url string) (runtimeSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return runtimeSample{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return runtimeSample{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return runtimeSample{}, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxScrapeBytes))
	if err != nil {
		return runtimeSample{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	var s runtimeSample
	var found int
	for name, dst := range map[string]*float64{seriesGCCPU: &s.gcCPU, seriesTotalCPU: &s.totalCPU} {
		if v, ok := firstValue(families[name]); ok {
			*dst = v
			found++
		}
	}
	if v, ok := firstValue(families[seriesLiveHeap]); ok {
		s.live = uint64(v)
		found++
	}
	if found < 3 {
		return s, fmt.Errorf("scrape %s: no Go runtime series (%s, %s, %s): not a geomatch process of this version?", url, seriesGCCPU, seriesTotalCPU, seriesLiveHeap)
	}
	return s, nil
}

// firstValue returns the value of a family's first sample.
func firstValue(f *dto.MetricFamily) (float64, bool) {
	if f == nil || len(f.GetMetric()) == 0 {
		return 0, false
	}
	m := f.GetMetric()[0]
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}
