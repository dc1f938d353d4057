package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type replayOut struct {
	StreamLastSeq uint64 `json:"stream_last_seq"`
	State         struct {
		LastSeq uint64       `json:"last_seq"`
		Tasks   []listedTask `json:"tasks"`
	} `json:"state"`
}

// TestBackupUnderLoadRestoresTheStateAtBackupTime: a backup taken while
// tasks pour in restores (offline, and online through the API) to a hub
// whose tasks are exactly those of the store at the backup's last event.
func TestBackupUnderLoadRestoresTheStateAtBackupTime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProcOn(t, dir, "127.0.0.1:0", fastAgents)
	l := startLoad(h, 4)
	require.Eventually(t, func() bool { return l.count() >= 50 }, 30*time.Second, 5*time.Millisecond)
	out, errOut, code := cli(t, h, "backup")
	require.Equal(t, 0, code, errOut)
	file := strings.TrimSpace(out)
	require.FileExists(t, file)
	require.Eventually(t, func() bool { return l.count() >= 120 }, 30*time.Second, 5*time.Millisecond)
	l.stop()
	h.terminate(t)

	// Keep the store as it was after the load, to replay it at the backup's point.
	after := filepath.Join(t.TempDir(), "after")
	require.NoError(t, exec.Command("cp", "-a", dir, after).Run())

	out, errOut, code = cli(t, h, "restore", file, "--data-dir", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "AGENTCOM_EVENTS")

	restored := startHubProcOn(t, dir, "127.0.0.1:0", fastAgents)
	got := tasksOf(t, restored)
	var at replayOut
	out, errOut, code = cli(t, h, "replay", "--data-dir", after, "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &at))
	health := storeHealth(t, restored)
	lastSeq := uint64(health["streams"].([]any)[0].(map[string]any)["last_seq"].(float64))
	require.Greater(t, lastSeq, uint64(0))
	require.Less(t, lastSeq, at.StreamLastSeq, "the backup is older than the end of the load")
	out, errOut, code = cli(t, h, "replay", "--data-dir", after, "--until-seq", itoa(lastSeq), "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &at))
	require.Equal(t, idsStatuses(at.State.Tasks), idsStatuses(got), "restored tasks are those at backup time")

	// Online: the running hub restores a backup through the API and comes
	// back with the backup's state.
	code, body, err := restored.postJSON("/api/admin/restore", `{"file":"`+filepath.Base(file)+`"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool { return restored.count("hub ready") == 2 }, 30*time.Second, 20*time.Millisecond)
	restored.reready(t)
	require.Equal(t, idsStatuses(at.State.Tasks), idsStatuses(tasksOf(t, restored)))
}

func idsStatuses(ts []listedTask) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID + ":" + t.Status
	}
	slices.Sort(out)
	return out
}

func tasksOf(t *testing.T, h *hubProc) []listedTask {
	t.Helper()
	all := h.list(t)
	for _, st := range []string{"dead_letter"} {
		resp, err := http.Get(h.httpURL + "/api/tasks?status=" + st)
		require.NoError(t, err)
		var out struct{ Tasks []listedTask }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		all = append(all, out.Tasks...)
	}
	return all
}

func storeHealth(t *testing.T, h *hubProc) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.httpURL+"/api/admin/store-health", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func (h *hubProc) postJSON(path, body string) (int, map[string]any, error) { return h.post(path, body) }

func (h *hubProc) count(message string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		if l["message"] == message {
			n++
		}
	}
	return n
}

// reready takes the URLs and token of the last "hub ready" (after a restart).
func (h *hubProc) reready(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	for _, l := range h.lines {
		if l["message"] == "hub ready" {
			h.natsURL, h.httpURL = l["nats_url"].(string), l["http_url"].(string)
		}
	}
	h.mu.Unlock()
	tok, err := os.ReadFile(filepath.Join(h.dataDir, "admin.token"))
	require.NoError(t, err)
	h.token = strings.TrimSpace(string(tok))
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
