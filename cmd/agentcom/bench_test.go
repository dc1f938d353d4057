package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/bench"
)

// benchCLI runs `agentcom bench args...` in process and returns its
// stdout, stderr and error.
func benchCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"bench"}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// benchJSON runs bench with --json and decodes its one document.
func benchJSON(t *testing.T, args ...string) bench.Report {
	t.Helper()
	out, errOut, err := benchCLI(t, append(args, "--json")...)
	require.NoError(t, err, errOut)
	var rep bench.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&rep), out)
	require.False(t, dec.More(), "one JSON document: %s", out)
	return rep
}

// requireCounts checks a run: every task completed, each rate positive,
// nothing declined, aborted or dropped.
func requireCounts(t *testing.T, r bench.Result, mode string, tasks int) {
	t.Helper()
	require.Equal(t, mode, r.Mode)
	require.Equal(t, tasks, r.Tasks)
	require.Equal(t, 4, r.Workers)
	require.Positive(t, r.Seconds)
	require.Positive(t, r.TasksPerS)
	require.Zero(t, r.Declines+r.Aborts+r.Dropped)
	require.NotNil(t, r.Raw)
	require.Equal(t, tasks, r.Raw.Messages)
	require.Positive(t, r.Raw.SyncPerS)
	require.Positive(t, r.Raw.AsyncPerS)
}

func TestBenchCommandEachModeJSON(t *testing.T) {
	for _, c := range []struct {
		mode  string
		tasks int
	}{{bench.ModeBurnDown, 200}, {bench.ModeContinuous, 200}, {bench.ModeLatency, 40}} {
		t.Run(c.mode, func(t *testing.T) {
			rep := benchJSON(t, "--mode", c.mode, "--tasks", strconv.Itoa(c.tasks), "--workers", "4", "--slots", "2",
				"--submitters", "4", "--sync", "1s", "--dir", t.TempDir())
			require.Len(t, rep.Runs, 1)
			r := rep.Runs[0]
			requireCounts(t, r, c.mode, c.tasks)
			require.Equal(t, "1s", r.Sync)
			require.Equal(t, "embedded", r.Target)
			require.Equal(t, 2, r.Slots)
			require.NotNil(t, r.Memory)
			require.Positive(t, r.Memory.RSSMB)
			if c.mode != bench.ModeBurnDown {
				require.NotNil(t, r.Latency)
				require.Equal(t, c.tasks, r.Latency.Samples)
				require.Positive(t, r.Latency.P50)
			}
		})
	}
}

func TestBenchCommandTableBothSyncs(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := benchCLI(t, "--mode", "latency", "--tasks", "20", "--workers", "2", "--sync", "both", "--dir", dir)
	require.NoError(t, err, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Equal(t, []string{"MODE", "SYNC", "WORKERS", "SLOTS", "TASKS", "SECONDS", "TASKS/S", "P50_MS", "P90_MS", "P99_MS",
		"MAX_MS", "RAW_SYNC/S", "RAW_ASYNC/S", "RSS_MB", "HWM_MB"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"latency", "always", "2", "1", "20"}, strings.Fields(lines[1])[:5])
	require.Equal(t, []string{"latency", "1s", "2", "1", "20"}, strings.Fields(lines[2])[:5])
	require.NotContains(t, errOut, "\r", "no progress when stderr is not a terminal")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "the temporary data directories are removed")
}

func TestBenchCommandProgress(t *testing.T) {
	_, errOut, err := benchCLI(t, "--mode", "burn-down", "--tasks", "50", "--workers", "2", "--sync", "1s",
		"--no-raw", "--progress", "--json", "--dir", t.TempDir())
	require.NoError(t, err)
	require.Contains(t, errOut, "\rburn-down sync=1s prefill")
	require.Contains(t, errOut, "\rburn-down sync=1s run")
	require.Contains(t, errOut, "50/50")
	require.NotContains(t, errOut, "raw", "--no-raw skips the raw publishes")
}

// TestBenchCommandRunningHub runs against a hub process with an admin
// token file; the workers' tokens are revoked afterwards.
func TestBenchCommandRunningHub(t *testing.T) {
	h := startHubProc(t, t.TempDir())
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(h.token+"\n"), 0o600))
	rep := benchJSON(t, "--mode", "continuous", "--tasks", "100", "--workers", "4", "--sync", "1s",
		"--hub", h.natsURL, "--token-file", tokenFile, "--dir", t.TempDir())
	require.Len(t, rep.Runs, 1)
	r := rep.Runs[0]
	requireCounts(t, r, bench.ModeContinuous, 100)
	require.Equal(t, h.natsURL, r.Target)
	require.Nil(t, r.Memory, "the hub's memory is not this process's")
	out, errOut, code := cli(t, h, "token", "list", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"count": 0`, "the workers' tokens are revoked")
}

// TestBenchCommandSidecars runs the workers as sidecar processes of the
// binary under test.
func TestBenchCommandSidecars(t *testing.T) {
	dir := t.TempDir()
	rep := benchJSON(t, "--mode", "burn-down", "--tasks", "60", "--workers", "2", "--sync", "1s", "--no-raw",
		"--sidecars", "--sidecar-bin", bin, "--dir", dir)
	require.Len(t, rep.Runs, 1)
	r := rep.Runs[0]
	require.True(t, r.Sidecars)
	require.Equal(t, 60, r.Tasks)
	require.Positive(t, r.TasksPerS)
	require.Nil(t, r.Raw)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "the data, token and state directories are removed")
}

func TestBenchCommandRefusesBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "0"}, "--workers: must be at least 1, not 0"},
		{[]string{"--slots", "0"}, "--slots: must be at least 1, not 0"},
		{[]string{"--submitters", "0"}, "--submitters: must be at least 1, not 0"},
		{[]string{"--mode", "sprint"}, `--mode: unknown mode "sprint": use burn-down, continuous or latency`},
		{[]string{"--sync", "sometimes"}, `--sync: "sometimes" is not "always", an interval of at least 1ms such as "1s", or "both"`},
		{[]string{"--duration", "5s"}, "--duration: only for --mode continuous, not burn-down"},
		{[]string{"--sidecars", "--mode", "latency"}, "--sidecars: not in latency mode"},
		{[]string{"--token-file", "x"}, "--token-file and --token: only with --hub"},
		{[]string{"--hub", "nats://127.0.0.1:1", "--token-file", "/nonexistent/admin.token"}, "read --token-file"},
		{[]string{"--workers", "many"}, `invalid argument "many" for "--workers"`},
		{[]string{"extra"}, `unknown command "extra" for "agentcom bench"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, _, err := benchCLI(t, c.args...)
			require.ErrorContains(t, err, c.want)
			require.Empty(t, out)
		})
	}
}

// TestBenchReadmeExamples runs the README's bench commands as written:
// each prints its table, or with --json one document, and completes
// every task it asks for.
func TestBenchReadmeExamples(t *testing.T) {
	blocks := readmeBlocks(t, filepath.Join("..", "..", "README.md"), "Measure it")
	require.Len(t, blocks, 1, "one block of commands; the output shown is a text block")
	r := newReadmeRun(t)
	for _, c := range blocks[0].commands {
		require.True(t, strings.HasPrefix(c, "./agentcom bench "), c)
		var out, errb bytes.Buffer
		cmd := r.shell(c)
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), "README command %q failed: %s", c, errb.String())
		if strings.Contains(c, "--json") {
			var rep bench.Report
			require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
			require.NotEmpty(t, rep.Runs)
			require.Positive(t, rep.Runs[0].Tasks)
			continue
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Equal(t, benchColumns, strings.Fields(lines[0]), c)
		require.Len(t, lines, 1+strings.Count(c, "--sync both")+1, "a row per sync setting: %s", out.String())
	}
}
