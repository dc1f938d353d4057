package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVersion: --version names the version and the commit; a release
// sets both with -ldflags.
func TestVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	require.Regexp(t, `^agentcom \S+, commit \S+.*, go1\.\S+ \S+/\S+\n$`, string(out))

	release := filepath.Join(t.TempDir(), "agentcom")
	build := exec.Command("go", "build", "-o", release,
		"-ldflags", "-X main.version=v9.8.7 -X main.commit=0123abcd", ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	out, err = exec.Command(release, "--version").Output()
	require.NoError(t, err)
	require.Equal(t, "agentcom v9.8.7, commit 0123abcd, "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n", string(out))
}

// TestDescribeBuild: without ldflags, the version and commit come from
// what Go stamped.
func TestDescribeBuild(t *testing.T) {
	t.Parallel()
	suffix := ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "deadbeef"}, {Key: "vcs.modified", Value: "true"}}}
	require.Equal(t, "v1.4.0, commit deadbeef (modified)"+suffix, describeBuild("", "", stamped))
	require.Equal(t, "v2, commit cafe"+suffix, describeBuild("v2", "cafe", stamped), "ldflags win")
	devel := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	require.Equal(t, "devel, commit unknown"+suffix, describeBuild("", "", devel))
	require.Equal(t, "devel, commit unknown"+suffix, describeBuild("", "", nil))
}
