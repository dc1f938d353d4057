package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCLITaskCommands(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())

	out, errOut, code := cli(t, h, "task", "submit", "write the docs", "--priority", "high",
		"--capability", "docs", "--capability", "go", "--max-retries", "5", "--metadata", `{"repo":"agentcom"}`)
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	require.Regexp(t, `^task-[0-9a-f]{16}$`, id)

	out, _, code = cli(t, h, "task", "show", id, "--json")
	require.Equal(t, 0, code)
	var task map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &task))
	require.Equal(t, "high", task["priority"])
	require.Equal(t, []any{"docs", "go"}, task["needed_capabilities"])
	require.EqualValues(t, 5, task["max_retries"])
	require.Equal(t, map[string]any{"repo": "agentcom"}, task["metadata"])

	out, _, code = cli(t, h, "task", "list", "--status", "queued")
	require.Equal(t, 0, code)
	require.Contains(t, out, id)
	require.Contains(t, out, "write the docs")

	_, errOut, code = cli(t, h, "task", "submit", "x", "--priority", "someday")
	require.Equal(t, 2, code, "a refused request exits 2")
	require.Contains(t, errOut, "priority")

	_, errOut, code = cli(t, h, "task", "retry", id)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "invalid_state")

	out, _, code = cli(t, h, "task", "cancel", id, "--reason", "done by hand")
	require.Equal(t, 0, code)
	require.Contains(t, out, "cancelled")

	_, errOut, code = cli(t, h, "task", "list", "--token", "ac_wrong")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "token was refused")
}

func TestReplayUntilSeqAndTimeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProc(t, dir)
	var ids []string
	for _, p := range []string{"low", "urgent", "normal"} {
		out, errOut, code := cli(t, h, "task", "submit", "replay "+p, "--priority", p)
		require.Equal(t, 0, code, errOut)
		ids = append(ids, strings.TrimSpace(out))
	}
	_, _, code := cli(t, h, "task", "cancel", ids[0])
	require.Equal(t, 0, code)

	_, errOut, code := cli(t, h, "replay", "--data-dir", dir)
	require.NotEqual(t, 0, code, "replay refuses a data dir in use")
	require.Contains(t, errOut, "a hub is running")
	h.terminate(t)

	var res struct {
		StreamLastSeq uint64 `json:"stream_last_seq"`
		State         struct {
			LastSeq uint64   `json:"last_seq"`
			Queue   []string `json:"queue"`
		} `json:"state"`
		Timeline []struct {
			Seq       uint64 `json:"seq"`
			Type      string `json:"type"`
			RequestID string `json:"request_id"`
			Time      string `json:"time"`
		} `json:"timeline"`
	}
	out, errOut, code := cli(t, h, "replay", "--data-dir", dir, "--until-seq", "2", "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, uint64(4), res.StreamLastSeq)
	require.Equal(t, uint64(2), res.State.LastSeq)
	require.Equal(t, []string{ids[1], ids[0]}, res.State.Queue, "at seq 2: urgent, then low")

	out, errOut, code = cli(t, h, "replay", "--data-dir", dir, "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, []string{ids[1], ids[2]}, res.State.Queue, "at the end: the low task is cancelled")

	out, errOut, code = cli(t, h, "replay", "--data-dir", dir, "--task", ids[0], "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Len(t, res.Timeline, 2)
	require.Equal(t, "task.submitted", res.Timeline[0].Type)
	require.Equal(t, uint64(1), res.Timeline[0].Seq)
	require.Equal(t, "task.cancelled", res.Timeline[1].Type)
	require.Equal(t, uint64(4), res.Timeline[1].Seq)
	for _, e := range res.Timeline {
		require.Regexp(t, `^req-[0-9a-f]{16}$`, e.RequestID)
		require.NotEmpty(t, e.Time)
	}

	// --until takes a time: the state as of the first submit's event.
	until := res.Timeline[0].Time
	out, errOut, code = cli(t, h, "replay", "--data-dir", dir, "--until", until, "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, uint64(1), res.State.LastSeq)
	require.Equal(t, []string{ids[0]}, res.State.Queue)
	_, errOut, code = cli(t, h, "replay", "--data-dir", dir, "--until", "yesterday")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "--until")

	out, _, code = cli(t, h, "replay", "--data-dir", dir, "--task", ids[0])
	require.Equal(t, 0, code)
	require.Contains(t, out, "timeline of "+ids[0])
	require.Contains(t, out, "task.cancelled")

	_, errOut, code = cli(t, h, "replay", "--data-dir", t.TempDir())
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "no event store")
}

func TestHubRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	for flag, key := range map[string]string{
		"--log-level=loud":            "log.level",
		"--nats-listen=nowhere":       "nats.listen",
		"--http-listen=1.2.3.4:99999": "http.listen",
		"--sync=sometimes":            "store.sync",
	} {
		cmd := exec.Command(bin, "hub", "--data-dir", t.TempDir(), flag)
		out, err := cmd.CombinedOutput()
		require.Error(t, err, flag)
		require.Contains(t, string(out), key, flag)
	}
}
