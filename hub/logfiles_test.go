package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
)

// TestEveryLineReachesTheLogFile: every line the hub logged, up to its last
// words at shutdown, is on stdout and in <data-dir>/logs/agentcom.log.
func TestEveryLineReachesTheLogFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubCfg(t, dir, logsink.LevelDebug, func(*config.Hub) {})
	id := h.submit(t, `{"description":"logged"}`)
	h.Stop()

	file, err := os.ReadFile(filepath.Join(dir, "logs", "agentcom.log"))
	require.NoError(t, err)
	inFile := map[string]bool{}
	for _, line := range logtest.RequireLines(t, file) {
		delete(line, "log_seq")
		inFile[key(line)] = true
	}
	stdout := logtest.RequireLines(t, []byte(strings.Join(h.logs.Lines(), "\n")))
	require.NotEmpty(t, stdout)
	var sawSubmit, sawStopped bool
	for _, line := range stdout {
		require.True(t, inFile[key(line)], "stdout line missing from the file: %v", line)
		sawSubmit = sawSubmit || line["task_id"] == id
		sawStopped = sawStopped || line["message"] == "hub stopped"
	}
	require.True(t, sawSubmit)
	require.True(t, sawStopped)
}

func key(line map[string]any) string {
	return line["time"].(string) + "|" + line["message"].(string) + "|" + line["function"].(string)
}
