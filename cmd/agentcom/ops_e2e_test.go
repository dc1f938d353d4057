package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
)

// cleanEnv is the environment without AGENTCOM_* variables, with its own
// data home, so that only the arguments configure the binary.
func cleanEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTCOM_") && !strings.HasPrefix(kv, "XDG_DATA_HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "XDG_DATA_HOME="+t.TempDir())
}

// runBin runs the binary to its end (at most a minute) and returns
// stdout, stderr and the exit code.
func runBin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &ee, "run %v", args)
		return out.String(), errb.String(), ee.ExitCode()
	}
	return out.String(), errb.String(), 0
}

// TestCLIErrorsKeepTheirWordsAndLoseTheirSecrets: the errors of config
// and commands reach stderr as written ("token: required", the key that
// is wrong), while a real token in them is masked.
func TestCLIErrorsKeepTheirWordsAndLoseTheirSecrets(t *testing.T) {
	t.Parallel()
	_, stderr, code := runBin(t, "sidecar", "--agent-id", "a1", "--exec", "true")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "token: required")
	require.NotContains(t, stderr, "REDACTED")

	_, stderr, code = runBin(t, "hub", "--data-dir", t.TempDir(), "--log-format", "pretty")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `log.format: "pretty" is not one of auto, json, console`)

	token := broker.NewToken() // the shape every agent and admin token has
	_, stderr, code = runBin(t, "hub", "--data-dir", t.TempDir(), "--nats-listen", token)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `nats.listen: "[REDACTED]" is not host:port`)
	require.NotContains(t, stderr, token)
}

// TestHubOnABusyPortFailsAtOnce runs the binary on an address a real
// listener holds, for each listener: it exits at once naming the address
// and the key, and logs no "hub stopped".
func TestHubOnABusyPortFailsAtOnce(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	addr := busy.Addr().String()
	for key, flags := range map[string][]string{
		"nats.listen": {"--nats-listen", addr, "--http-listen", "127.0.0.1:0"},
		"http.listen": {"--nats-listen", "127.0.0.1:0", "--http-listen", addr},
	} {
		start := time.Now()
		stdout, stderr, code := runBin(t, append([]string{"hub", "--data-dir", t.TempDir()}, flags...)...)
		took := time.Since(start)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, addr)
		require.Contains(t, stderr, "("+key+")")
		require.Contains(t, stderr, "address already in use")
		require.NotContains(t, stdout, "hub stopped")
		require.Contains(t, stdout, "hub failed to start")
		// Immediate by design; 5 s is room for a loaded machine (it was 30 s).
		require.Less(t, took, 5*time.Second, "%v took %s", flags, took)
	}
}

// TestConsoleLogFormat: with --log-format console the hub's stdout is
// readable lines, while its log file stays JSON.
func TestConsoleLogFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(bin, "hub", "--data-dir", dir, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--log-format", "console")
	cmd.Env = cleanEnv(t)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill() }()
	ready := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} INF \[hub\] hub ready .*http_url=http://127\.0\.0\.1:\d+`)
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() && !ready.MatchString(sc.Text()) {
		seen = append(seen, sc.Text())
		require.False(t, strings.HasPrefix(sc.Text(), "{"), "a JSON line on a console stdout: %s", sc.Text())
	}
	require.NotEmpty(t, seen, "lines before hub ready")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for sc.Scan() {
		require.False(t, strings.HasPrefix(sc.Text(), "{"), "a JSON line on a console stdout: %s", sc.Text())
	}
	require.NoError(t, cmd.Wait())
	lines := logFileLines(t, dir) // each checked against the log line schema
	messages := map[string]bool{}
	for _, l := range lines {
		messages[l["message"].(string)] = true
	}
	require.True(t, messages["hub ready"], "the file has the JSON lines")
	require.FileExists(t, filepath.Join(dir, "logs", "agentcom.log"))
}
