package loadgen

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/geomatch/geomatch/internal/metrics"
)

// TestScrapeRuntimeReadsAGeomatchRegistry: the series scrapeRuntime reads
// are the ones a geomatch process's registry exports.
func TestScrapeRuntimeReadsAGeomatchRegistry(t *testing.T) {
	srv := httptest.NewServer(promhttp.HandlerFor(metrics.NewRegistry(), promhttp.HandlerOpts{}))
	defer srv.Close()
	s, err := scrapeRuntime(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if s.totalCPU <= 0 || s.gcCPU < 0 || s.gcCPU > s.totalCPU || s.live == 0 {
		t.Fatalf("scraped gc %.3fs of %.3fs CPU, live heap %d: want positive figures, gc within the total", s.gcCPU, s.totalCPU, s.live)
	}
}

// TestScrapeRuntimeRefusesOtherEndpoints: an endpoint without the series
// is an error, not zeros.
func TestScrapeRuntimeRefusesOtherEndpoints(t *testing.T) {
	srv := httptest.NewServer(promhttp.Handler()) // the default registry: no runtime/metrics rules
	defer srv.Close()
	if _, err := scrapeRuntime(context.Background(), srv.URL); err == nil {
		t.Fatal("scraped the runtime series from an endpoint without them")
	}
}

func TestCheckMetricsURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:50080/metrics": true,
		"http://localhost:9/metrics":     true,
		"http://10.0.0.1:50080/metrics":  false,
		"https://127.0.0.1/metrics":      false,
		"127.0.0.1:50080":                false,
	} {
		if err := checkMetricsURL(url); (err == nil) != ok {
			t.Errorf("checkMetricsURL(%q) = %v, want ok %v", url, err, ok)
		}
	}
}
