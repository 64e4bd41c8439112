// Package buildinfo says which build of a program is running: its module
// version and the VCS revision it was built from, as the Go toolchain
// recorded them.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Info is what the build recorded.
type Info struct {
	Version   string // module version; "(devel)" for a build from a work tree
	Revision  string // VCS revision, with "-dirty" when the tree was modified; "unknown" when not recorded
	GoVersion string
}

// Read returns the running program's Info.
func Read() Info {
	i := Info{Version: "(devel)", Revision: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && i.Revision != "unknown" {
		i.Revision += "-dirty"
	}
	return i
}

// String is the line --version prints, after the program's name.
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, i.Revision, i.GoVersion)
}

// Register adds to reg the metric NAMESPACE_build_info (always 1, the build
// as its labels) and, with runtime, the Go runtime's and the process's own
// metrics: what both programs' /metrics share.
func (i Info) Register(reg *prometheus.Registry, namespace string, runtime bool) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "The build: always 1, with its version, VCS revision and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	}, func() float64 { return 1 }))
	if runtime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
}
