package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit name the build. A release sets them with
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/agentcom
//
// Left empty, they come from what Go stamped into the binary: the module
// version (a tagged `go install ...@v1.2.0`, or a pseudo-version from the
// repository) and vcs.revision (a build in a git clone, unless
// -buildvcs=false; Go does not stamp builds in a git worktree).
var version, commit string

// versionText is the line `agentcom --version` prints.
func versionText() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, bi)
}

// describeBuild names the version and commit: the ldflags values first,
// then bi's, then "devel" and "unknown".
func describeBuild(v, rev string, bi *debug.BuildInfo) string {
	modified, stamped := false, false
	if bi != nil {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev, stamped = s.Value, true
			case s.Key == "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev == "" {
		rev = "unknown"
	} else if stamped && modified {
		rev += " (modified)"
	}
	return fmt.Sprintf("%s, commit %s, %s %s/%s", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
