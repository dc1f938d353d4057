package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// wakeHub starts a sidecar in wake mode whose wake command records its
// arguments in dir; results go to results.
func wakeHub(t *testing.T, wake string) (h *testHub, dir, results, state string) {
	t.Helper()
	h = newTestHub(t)
	dir, results, state = t.TempDir(), t.TempDir(), t.TempDir()
	cfg := h.config("wake:"+strings.ReplaceAll(wake, "$DIR", shellQuote(dir)), state)
	cfg.ResultsDir = results
	start(t, cfg)
	h.hello(1)
	return h, dir, results, state
}

const recordingWake = `printf %s ${TASK_ID} > $DIR/id; printf %s ${TASK_DESCRIPTION} > $DIR/desc; printf %s ${TASK_JSON} > $DIR/task.json`

func TestWakeCompletesFromResultFile(t *testing.T) {
	t.Parallel()
	h, dir, results, state := wakeHub(t, recordingWake)
	resultPath := filepath.Join(results, "t1.json")
	require.NoError(t, os.WriteFile(resultPath, []byte(`{"status":"success","result":"stale"}`), 0o600))
	a := h.assign("t1", 5)
	h.waitFor(broker.VerbAccept, 1)

	// The shell creates task.json before printf fills it: wait for its JSON.
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "task.json"))
		return err == nil && json.Valid(b)
	}, wait, tick)
	require.NoFileExists(t, resultPath, "a stale result file is removed before waking")
	require.Equal(t, "t1", readString(t, filepath.Join(dir, "id")))
	require.Equal(t, a.Description, readString(t, filepath.Join(dir, "desc")))
	require.JSONEq(t, fmtJSON(a), readString(t, filepath.Join(dir, "task.json")))
	require.Eventually(t, func() bool {
		recs := stateOf(t, state)
		return len(recs) == 1 && recs[0].Woken && recs[0].Status == statusWorking
	}, wait, tick, "woken not persisted")

	h.waitFor(broker.VerbProgress, 2) // progress while waiting
	require.Empty(t, h.requests(broker.VerbComplete))
	writeResult(t, resultPath, `{"status":"success","result":{"answer":42}}`)
	var c protocol.Complete
	h.waitFor(broker.VerbComplete, 1).decode(t, &c)
	require.JSONEq(t, `{"answer":42}`, string(c.Result))
	require.Eventually(t, func() bool { return !fileExists(resultPath) }, wait, tick, "result file not deleted")
	requireStateCleared(t, state)
}

func TestWakeResultFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{name: "error field", file: `{"status":"error","error":"no luck"}`, want: "no luck"},
		{name: "reason field", file: `{"status":"failed","reason":"gave up"}`, want: "gave up"},
		{name: "structured error", file: `{"status":"failed","error":{"code":7}}`, want: `{"code":7}`},
		{name: "no reason", file: `{"status":"weird"}`, want: `result status "weird"`},
		{name: "unparseable", file: `{"status":`, want: "unparseable result file t1.json: unexpected end of JSON input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, dir, results, state := wakeHub(t, recordingWake)
			h.assign("t1", 1)
			require.Eventually(t, func() bool { return fileExists(filepath.Join(dir, "id")) }, wait, tick)
			writeResult(t, filepath.Join(results, "t1.json"), tc.file)

			var f protocol.Fail
			h.waitFor(broker.VerbFail, 1).decode(t, &f)
			require.Equal(t, tc.want, f.Error)
			requireStateCleared(t, state)
			require.Eventually(t, func() bool { return !fileExists(filepath.Join(results, "t1.json")) }, wait, tick)
		})
	}
}

func TestWakeFailsAfterRetries(t *testing.T) {
	t.Parallel()
	h, dir, _, state := wakeHub(t, `echo x >> $DIR/attempts; echo cannot wake >&2; exit 1`)
	h.assign("t1", 1)

	var f protocol.Fail
	h.waitFor(broker.VerbFail, 1).decode(t, &f)
	require.Equal(t, "wake_failed_after_4_attempts", f.Error)
	require.Equal(t, strings.Repeat("x\n", 4), readString(t, filepath.Join(dir, "attempts")))
	requireStateCleared(t, state)
}

func TestWakeSucceedsOnRetry(t *testing.T) {
	t.Parallel()
	h, _, results, _ := wakeHub(t, `echo x >> $DIR/attempts; [ "$(wc -l < $DIR/attempts)" -ge 3 ]`)
	h.assign("t1", 1)
	require.Eventually(t, func() bool { return len(h.requests(broker.VerbProgress)) > 0 }, wait, tick)
	writeResult(t, filepath.Join(results, "t1.json"), `{"status":"success"}`)
	var c protocol.Complete
	h.waitFor(broker.VerbComplete, 1).decode(t, &c)
	require.Empty(t, c.Result)
}

func TestShellQuoteRoundTrips(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "it's", `a'b'"c" $HOME $(id) ; rm -rf /`, "line\nbreak", `\'`} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(s)).Output()
		require.NoError(t, err)
		require.Equal(t, s, string(out))
	}
}

func TestExpandWake(t *testing.T) {
	t.Parallel()
	a := protocol.Assignment{TaskID: "t-1", Description: "fix it's bug"}
	got := expandWake("wake --id ${TASK_ID} --desc ${TASK_DESCRIPTION} ${TASK_ID}", a)
	require.Equal(t, `wake --id 't-1' --desc 'fix it'\''s bug' 't-1'`, got)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// writeResult writes a result file as agents should: a temporary file
// renamed into place.
func writeResult(t *testing.T, path, content string) {
	t.Helper()
	tmp := fmt.Sprintf("%s.tmp", path)
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}
