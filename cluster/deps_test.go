package cluster_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/geomatch/geomatch/internal/servertest"
)

const module = "github.com/geomatch/geomatch/"

// goList runs `go list` with args and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// TestPackageEdges pins the seams of the architecture: the public front
// door reaches the matchers only through the fleet client, the fleet client
// knows no service package, and nothing under internal/ wires services
// together (that is this package's job).
func TestPackageEdges(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		servertest.Missing(t, "the go command is not on PATH")
	}
	forbidden := map[string][]string{
		"router":        {"matcher", "matcher/index", "matcher/handoff", "cluster"},
		"fleet":         {"router", "matcher", "matcher/index", "dispatch", "store", "cluster"},
		"matcher":       {"router", "fleet", "dispatch", "cluster"},
		"dispatch":      {"router", "matcher", "cluster"},
		"shardmap":      {"membership", "router", "matcher", "fleet", "dispatch", "store", "cluster"},
		"driver":        {"router", "matcher", "fleet", "dispatch", "store", "membership", "shardmap", "cluster"},
		"matcher/index": {"matcher", "store", "router", "fleet", "membership", "cluster"},
	}
	for pkg, bad := range forbidden {
		deps := map[string]bool{}
		for _, d := range goList(t, "-deps", module+pkg) {
			deps[strings.TrimPrefix(d, module)] = true
		}
		for _, b := range bad {
			if deps[b] {
				t.Errorf("%s depends on %s", pkg, b)
			}
		}
	}
	services := []string{"router", "matcher", "dispatch", "membership", "store", "fleet", "cluster"}
	for _, line := range goList(t, "-f", `{{.ImportPath}}:{{join .Imports ","}}`, module+"internal/...") {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Split(imports, ",") {
			for _, s := range services {
				if imp == module+s || strings.HasPrefix(imp, module+s+"/") {
					t.Errorf("%s imports the service package %s", strings.TrimPrefix(pkg, module), s)
				}
			}
		}
	}
}
