package main

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink/logtest"
)

// logFileLines reads every line of the hub's log files, backups included,
// checking each against the log line schema.
func logFileLines(t *testing.T, dir string) []map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "logs", "agentcom*.log*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var lines []map[string]any
	for _, f := range files {
		lines = append(lines, logtest.RequireLines(t, readMaybeGzip(t, f))...)
	}
	return lines
}

func readMaybeGzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		r = zr
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

func (s *sidecarProc) terminate(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("sidecar did not stop within 30s of SIGTERM")
	}
}

// TestOneRequestIDFollowsATask: the request id of a submit is on the
// hub's and the sidecar's lines for that task, in the hub's log files.
func TestOneRequestIDFollowsATask(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProcOn(t, dir, "127.0.0.1:0", append(fastAgents, "AGENTCOM_LOG_LEVEL=debug"))
	sc := startSidecar(t, h, "tracer", "echo traced", nil)
	req, err := http.NewRequest(http.MethodPost, h.httpURL+"/api/tasks", strings.NewReader(`{"description":"trace me"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("X-Request-Id", "req-follow-me-42")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	id := out["task_id"].(string)
	h.waitTask(t, id, "completed", 30*time.Second)
	sc.terminate(t)
	h.terminate(t)

	modules, messages := map[string]bool{}, map[any]bool{}
	for _, l := range logFileLines(t, dir) {
		if l["request_id"] == "req-follow-me-42" {
			modules[l["module"].(string)] = true
		}
		messages[l["message"]] = true
	}
	require.True(t, messages["shutting down"] && messages["hub stopped"], "the SIGTERM's shutdown lines are in the file")
	require.True(t, modules["sidecar"], "the sidecar's lines for the task carry the id: %v", modules)
	require.True(t, modules["command"], "the hub's command lines carry it: %v", modules)
	require.True(t, modules["api"], "the hub's API lines carry it: %v", modules)
	require.True(t, modules["agents"], "the hub's agent lines carry it: %v", modules)
}

// TestSecretsNeverReachAnyLog: tokens, secrets and passwords in task
// metadata (nested), the sidecar's config and HTTP headers appear in no
// output and no file, at debug level.
func TestSecretsNeverReachAnyLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProcOn(t, dir, "127.0.0.1:0", append(fastAgents, "AGENTCOM_LOG_LEVEL=debug"))
	tokOut, _, code := cli(t, h, "token", "create", "keeper")
	require.Equal(t, 0, code)
	agentToken := strings.TrimSpace(tokOut)
	cfg := filepath.Join(t.TempDir(), "sidecar.yaml")
	state := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.WriteFile(cfg, []byte("agent_id: keeper\ntoken: "+agentToken+"\nhub: "+h.natsURL+
		"\nexec: 'echo \"$AGENTCOM_TASK_METADATA\"'\nstate_dir: "+state+"\nlog:\n  level: debug\n"), 0o600))
	sc := startSidecarArgs(t, "keeper", "sidecar", "--config", cfg)

	for _, header := range [][2]string{{"Authorization", "Bearer CANARY-HEADER-1"}, {"Cookie", "session=CANARY-HEADER-2"}} {
		req, _ := http.NewRequest(http.MethodPost, h.httpURL+"/api/tasks", strings.NewReader(`{"description":"x"}`))
		req.Header.Set(header[0], header[1])
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	id := h.submitTask(t, `{"description":"deploy","metadata":{"deploy":{"api_token":"CANARY-META-1",`+
		`"steps":[{"password":"CANARY-META-2"}]},"auth_token":"CANARY-META-3","client_secret":"CANARY-META-4"}}`)
	h.waitTask(t, id, "completed", 30*time.Second)
	sc.terminate(t)
	h.terminate(t)

	secrets := []string{"CANARY-HEADER-1", "CANARY-HEADER-2", "CANARY-META-1", "CANARY-META-2", "CANARY-META-3",
		"CANARY-META-4", agentToken, h.token}
	var texts []string
	texts = append(texts, h.stdout(), sc.stdout())
	for _, root := range []string{filepath.Join(dir, "logs"), state} {
		files, _ := filepath.Glob(filepath.Join(root, "*.log*"))
		require.NotEmpty(t, files, root)
		for _, f := range files {
			texts = append(texts, string(readMaybeGzip(t, f)))
		}
	}
	for _, text := range texts {
		require.NotEmpty(t, text)
		for _, s := range secrets {
			require.NotContains(t, text, s)
		}
	}
}
