package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agentcom/agentcom/logsink/logtest"
)

// bin is the agentcom binary built once for the end-to-end tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentcom-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "agentcom")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agentcom:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 { // no goroutine of the tests outlives them
		if err := goleak.Find(goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// hubProc is a real `agentcom hub` process.
type hubProc struct {
	cmd     *exec.Cmd
	dataDir string
	natsURL string
	httpURL string
	// monitorURL is the NATS monitoring port's, "" when it is off.
	monitorURL string
	token      string
	done       chan struct{}

	mu    sync.Mutex
	lines []map[string]any
	raw   []string
}

// stdout is everything the hub printed so far.
func (h *hubProc) stdout() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.raw, "\n")
}

// startHubProc starts the binary on random ports and waits for "hub ready".
// Every line it prints on stdout must be a JSON object.
func startHubProc(t *testing.T, dataDir string) *hubProc {
	t.Helper()
	return startHubProcOn(t, dataDir, "127.0.0.1:0", nil)
}

// startHubProcOn starts the hub with its NATS listener at natsListen and
// extra environment (such as AGENTCOM_AGENTS_* timings).
func startHubProcOn(t testing.TB, dataDir, natsListen string, env []string) *hubProc {
	t.Helper()
	cmd := exec.Command(bin, "hub", "--data-dir", dataDir, "--nats-listen", natsListen, "--http-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	return startHubCmd(t, cmd, dataDir)
}

// startHubCmd starts cmd, a hub (or a shell that execs one) on dataDir,
// and waits for "hub ready".
func startHubCmd(t testing.TB, cmd *exec.Cmd, dataDir string) *hubProc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	h := &hubProc{cmd: cmd, dataDir: dataDir, done: make(chan struct{})}
	ready := make(chan map[string]any, 1)
	go h.read(t, stdout, ready)
	t.Cleanup(func() { h.kill() })
	select {
	case line := <-ready:
		h.natsURL, h.httpURL = line["nats_url"].(string), line["http_url"].(string)
		h.monitorURL, _ = line["monitor_url"].(string)
	case <-h.done:
		t.Fatal("hub exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("hub not ready after 60s")
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	require.NoError(t, err)
	h.token = strings.TrimSpace(string(tok))
	return h
}

func (h *hubProc) read(t testing.TB, r io.Reader, ready chan<- map[string]any) {
	defer close(h.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("hub stdout line is not JSON: %q", sc.Text())
			continue
		}
		if err := logtest.Check(sc.Bytes()); err != nil {
			t.Errorf("hub stdout line does not match the log schema: %v: %s", err, sc.Text())
		}
		h.mu.Lock()
		h.lines = append(h.lines, line)
		h.raw = append(h.raw, sc.Text())
		h.mu.Unlock()
		if line["message"] == "hub ready" {
			ready <- line
		}
	}
	_ = h.cmd.Wait()
}

func (h *hubProc) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
}

func (h *hubProc) hasMessage(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.lines {
		if l["message"] == msg {
			return true
		}
	}
	return false
}

// terminate sends SIGTERM and waits for a clean exit.
func (h *hubProc) terminate(t *testing.T) {
	t.Helper()
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not stop within 30s of SIGTERM")
	}
	require.Equal(t, 0, h.cmd.ProcessState.ExitCode())
	require.True(t, h.hasMessage("hub stopped"))
}

// post submits over HTTP and returns the status code and reply.
func (h *hubProc) post(path, body string) (int, map[string]any, error) {
	return h.call(http.MethodPost, path, body)
}

// get reads path over HTTP with the admin token.
func (h *hubProc) get(path string) (int, map[string]any, error) {
	return h.call(http.MethodGet, path, "")
}

func (h *hubProc) put(path, body string) (int, map[string]any, error) {
	return h.call(http.MethodPut, path, body)
}

// call sends one HTTP request with the admin token and decodes the reply.
func (h *hubProc) call(method, path, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, h.httpURL+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	err = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, err
}

type listedTask struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Priority  string    `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
}

func (h *hubProc) list(t *testing.T) []listedTask {
	t.Helper()
	resp, err := http.Get(h.httpURL + "/api/tasks")
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct{ Tasks []listedTask }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Tasks
}

// cli runs an agentcom client command against h and returns stdout,
// stderr and the exit code.
func cli(t *testing.T, h *hubProc, args ...string) (string, string, int) {
	t.Helper()
	return cliEnv(t, h, nil, args...)
}

// cliEnv runs the CLI against the hub with extra environment, and
// returns its stdout, stderr and exit code.
func cliEnv(t *testing.T, h *hubProc, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "AGENTCOM_HUB="+h.natsURL, "AGENTCOM_DATA_DIR="+h.dataDir), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errb.String(), 0
}
