// Package buildinfo carries the version stamped into the geomatch binary at
// link time (make build sets Version with -ldflags).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description of this build; "dev" when the
// binary was built without make.
var Version = "dev"

// String describes the build: version, VCS revision when known, Go version
// and platform.
func String() string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	return fmt.Sprintf("geomatch %s%s %s %s/%s", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
