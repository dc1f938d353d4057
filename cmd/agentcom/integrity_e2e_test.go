package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// storeWithTasks runs a hub on a new directory, submits n tasks, stops it
// and returns the directory.
func storeWithTasks(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	h := startHubProc(t, dir)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = h.submitTask(t, `{"description":"integrity"}`)
	}
	h.terminate(t)
	return dir, ids
}

// xorEvents XORs size bytes at off (from the end when negative) of the
// events stream's block file named block ("" for the last one).
func xorEvents(t *testing.T, dir, block string, off, size int64) {
	t.Helper()
	blocks, err := filepath.Glob(filepath.Join(dir, "jetstream", "jetstream", "*", "streams", "AGENTCOM_EVENTS", "msgs", "*.blk"))
	require.NoError(t, err)
	require.NotEmpty(t, blocks)
	path := blocks[len(blocks)-1]
	if block != "" {
		path = filepath.Join(filepath.Dir(path), block)
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if off < 0 {
		off += int64(len(data))
	}
	for i := off; i < off+size; i++ {
		data[i] ^= 0xFF
	}
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// runBounded runs the binary with args, killed after within; it returns
// stdout and stderr together, the exit code, and whether it finished in time.
func runBounded(t *testing.T, within time.Duration, args ...string) (string, int, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), -1, false
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), code, true
}

// TestDamagedLastRecordNeitherHangsStartNorReplay: a damaged last record
// (the stream still counts it, the server cannot read it) used to hang
// the hub's start and replay forever. Both now end within 10 s and name
// the missing sequence; the hub serves reads and refuses writes.
func TestDamagedLastRecordNeitherHangsStartNorReplay(t *testing.T) {
	t.Parallel()
	dir, _ := storeWithTasks(t, 20)
	xorEvents(t, dir, "", -40, 8)

	out, code, done := runBounded(t, 10*time.Second, "replay", "--data-dir", dir)
	require.True(t, done, "replay did not end within 10s:\n%s", out)
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "events missing from the event store: sequences 20 ")

	start := time.Now()
	h := startHubProc(t, dir)
	require.Less(t, time.Since(start), 10*time.Second)
	requireLoss(t, h, "sequence 20 ")
}

// requireLoss checks a hub that found loss: unhealthy with the reason,
// /health 503, writes refused with store_loss and nothing appended.
func requireLoss(t *testing.T, h *hubProc, reason string) {
	t.Helper()
	health := storeHealth(t, h)
	require.Equal(t, "unhealthy", health["status"], health)
	require.Contains(t, health["loss_at_start"], reason)
	before := health["streams"].([]any)[0].(map[string]any)["last_seq"]
	resp, err := http.Get(h.httpURL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	code, body, err := h.post("/api/tasks", `{"description":"after the loss"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Equal(t, "store_loss", body["error"], body)
	after := storeHealth(t, h)["streams"].([]any)[0].(map[string]any)["last_seq"]
	require.Equal(t, before, after, "nothing is appended over the loss")
	require.True(t, h.hasMessage("event store lost events: refusing commands until a backup is restored or the loss accepted"))
	requireStoredEvent(t, h, "store.loss")
}

// TestDamageInsideABlockIsLossUntilAccepted: XOR inside the first block
// with the snapshot removed used to drop events silently. Now the hub
// reports the range, refuses writes and replay fails, until the operator
// accepts the loss; then writes work, on new sequences.
func TestDamageInsideABlockIsLossUntilAccepted(t *testing.T) {
	t.Parallel()
	dir, _ := storeWithTasks(t, 40)
	xorEvents(t, dir, "1.blk", 3000, 16)
	require.NoError(t, os.Remove(filepath.Join(dir, "snapshots", "projections.snap")))

	h := startHubProc(t, dir)
	requireLoss(t, h, "events missing from the event store: sequences ")
	last := storeHealth(t, h)["streams"].([]any)[0].(map[string]any)["last_seq"].(float64)
	h.terminate(t)
	out, code, done := runBounded(t, 10*time.Second, "replay", "--data-dir", dir)
	require.True(t, done)
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "events missing from the event store: sequences ")

	out, code, _ = runBounded(t, 30*time.Second, "store", "accept-loss", "--data-dir", dir, "--by", "ops")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "loss accepted: events missing from the event store: sequences ")
	out, code, _ = runBounded(t, 30*time.Second, "store", "accept-loss", "--data-dir", dir)
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "there is no loss to accept")

	again := startHubProc(t, dir)
	require.Equal(t, "healthy", storeHealth(t, again)["status"])
	again.submitTask(t, `{"description":"after accepting"}`)
	now := storeHealth(t, again)["streams"].([]any)[0].(map[string]any)["last_seq"].(float64)
	require.Equal(t, last+2, now, "the acceptance and the new task take new sequences")
	out, code, _ = runBounded(t, 10*time.Second, "replay", "--data-dir", dir)
	require.NotEqual(t, 0, code, "the hub still runs: %s", out)
	again.terminate(t)
	out, code, _ = runBounded(t, 10*time.Second, "replay", "--data-dir", dir)
	require.Equal(t, 0, code, out)
}

// requireStoredEvent waits for a telemetry event named name in what the
// TELEMETRY stream kept (emitted at start, before any observer could
// watch), read as a user would: agentcom events --since.
func requireStoredEvent(t *testing.T, h *hubProc, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		out, _, code := cli(t, h, "events", "--since", "1h", "--filter", name)
		return code == 0 && strings.Contains(out, name)
	}, 10*time.Second, 100*time.Millisecond, "no %s in the TELEMETRY stream", name)
}
