package logsink_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink"
)

// TestModulesAreTheOnesTheCodeLogsUnder reads every Module("...") call
// in the repository's code (tests aside): the list of known modules is
// exactly those names, so a level can be set for every module that
// logs and for no other.
func TestModulesAreTheOnesTheCodeLogsUnder(t *testing.T) {
	t.Parallel()
	call := regexp.MustCompile(`\.Module\("([^"]+)"\)`)
	used := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllSubmatch(src, -1) {
			used[string(m[1])] = true
		}
		return nil
	})
	require.NoError(t, err)
	var names []string
	for m := range used {
		names = append(names, m)
	}
	slices.Sort(names)
	require.Equal(t, names, logsink.Modules, "logsink.Modules must list exactly the modules the code logs under")
	require.True(t, logsink.KnownModule("agents"))
	require.False(t, logsink.KnownModule("scheduler-0001"))
}
