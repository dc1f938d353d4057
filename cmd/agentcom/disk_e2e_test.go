package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// mountTmpfs mounts a tmpfs of mb MiB on a new directory, unmounted at the
// end of the test, or skips the test when mounting is not permitted.
func mountTmpfs(t *testing.T, mb int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mb), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("skipped: this test needs a small volume and could not mount a %d MiB tmpfs on %s "+
			"(it needs root or CAP_SYS_ADMIN): %v: %s", mb, dir, err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillVolume writes a filler file in dir until the volume has no space
// left, and returns its path.
func fillVolume(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				require.True(t, errors.Is(err, syscall.ENOSPC), "fill %s: %v", path, err)
				break
			}
		}
	}
	return path
}

// submitTimed submits one task over HTTP and returns its status, task id
// (if stored), error code (if refused) and how long the answer took.
func submitTimed(h *hubProc, desc string) (int, string, string, time.Duration, error) {
	start := time.Now()
	code, out, err := h.post("/api/tasks", fmt.Sprintf(`{"description":%q}`, desc))
	id, _ := out["task_id"].(string)
	refusal, _ := out["error"].(string)
	return code, id, refusal, time.Since(start), err
}

// submitLoad submits tasks from a few goroutines until stopped, recording
// every answer.
type submitLoad struct {
	h       *hubProc
	stopped chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	acked    []string
	codes    map[int]int
	slowest  time.Duration
	failures []error
}

func startSubmitLoad(h *hubProc, workers int) *submitLoad {
	l := &submitLoad{h: h, stopped: make(chan struct{}), codes: map[int]int{}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stopped:
					return
				default:
				}
				code, id, _, took, err := submitTimed(h, fmt.Sprintf("load %d-%d", w, i))
				l.record(code, id, took, err)
			}
		}()
	}
	return l
}

func (l *submitLoad) record(code int, id string, took time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures = append(l.failures, err)
		return
	}
	l.codes[code]++
	l.slowest = max(l.slowest, took)
	if code == http.StatusCreated {
		l.acked = append(l.acked, id)
	}
}

func (l *submitLoad) stop() {
	close(l.stopped)
	l.wg.Wait()
}

func healthOf(t *testing.T, h *hubProc) (int, map[string]any) {
	t.Helper()
	code, out, err := h.get("/health")
	require.NoError(t, err)
	return code, out
}

// TestFullDiskIsAStateNotAHang fills the hub's volume under load: every
// submit is answered at once (stored, or 507 store_full), health says
// why, the hub takes writes again by itself once the filler is gone,
// SIGTERM stops it while full, and nothing acknowledged is lost.
func TestFullDiskIsAStateNotAHang(t *testing.T) {
	vol := mountTmpfs(t, 64)
	h := startHubProc(t, filepath.Join(vol, "data"))

	load := startSubmitLoad(h, 4)
	require.Eventually(t, func() bool { load.mu.Lock(); defer load.mu.Unlock(); return len(load.acked) >= 20 },
		20*time.Second, 10*time.Millisecond)
	filler := fillVolume(t, vol)
	var took time.Duration
	require.Eventually(t, func() bool {
		code, _, refusal, d, err := submitTimed(h, "on a full disk")
		took = d
		return err == nil && code == http.StatusInsufficientStorage && refusal == "store_full"
	}, 10*time.Second, 50*time.Millisecond, "a submit on a full volume is refused with 507 store_full")
	require.Less(t, took, 3*time.Second, "the refusal is immediate")
	time.Sleep(500 * time.Millisecond) // let the load meet the full store for a while
	load.stop()
	require.Empty(t, load.failures)
	require.Less(t, load.slowest, 3*time.Second, "no submit waits for a timeout: %v", load.codes)
	for code := range load.codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusInsufficientStorage}, code,
			"every answer is stored or store_full: %v", load.codes)
	}

	code, body := healthOf(t, h)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "store_full", body["error"])
	sh := storeHealth(t, h)
	require.Equal(t, "unhealthy", sh["status"])
	require.Contains(t, fmt.Sprint(sh["reasons"]), "the event store is full")
	_, errOut, exit := cli(t, h, "task", "submit", "over nats on a full disk")
	require.NotEqual(t, 0, exit)
	require.Contains(t, errOut, "store_full", "the NATS API answers with the same code")
	require.Eventually(t, func() bool { return h.hasMessage("event store full: refusing writes (store_full) until space returns") },
		10*time.Second, 20*time.Millisecond)

	live := watchStoreFull(t, h)
	require.NoError(t, os.Remove(filler))
	start := time.Now()
	var acked []string
	require.Eventually(t, func() bool {
		code, id, _, _, err := submitTimed(h, "space is back")
		if err == nil && code == http.StatusCreated {
			acked = append(acked, id)
		}
		return len(acked) > 0
	}, 15*time.Second, 50*time.Millisecond, "writes succeed again without a restart")
	t.Logf("writable again %s after the filler was removed", time.Since(start).Round(time.Millisecond))
	code, _ = healthOf(t, h)
	require.Equal(t, http.StatusOK, code)
	require.True(t, h.hasMessage("event store writable again"))
	requireStoreFullTelemetry(t, live)

	filler = fillVolume(t, vol)
	require.Eventually(t, func() bool { c, _ := healthOf(t, h); return c == http.StatusServiceUnavailable },
		10*time.Second, 50*time.Millisecond)
	stopStart := time.Now()
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		_ = h.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, for the failure message
		<-h.done
		t.Fatalf("the hub did not stop within 20s of SIGTERM on a full disk; it printed:\n%s", tail(h.stdout(), 400))
	}
	t.Logf("stopped %s after SIGTERM on a full disk", time.Since(stopStart).Round(time.Millisecond))
	require.Less(t, time.Since(stopStart), 15*time.Second+2*time.Second, "within the shutdown timeout")
	require.Equal(t, 0, h.cmd.ProcessState.ExitCode())

	require.NoError(t, os.Remove(filler))
	h2 := startHubProc(t, h.dataDir)
	stored := map[string]bool{}
	for _, task := range h2.list(t) {
		stored[task.ID] = true
	}
	all := append(load.acked, acked...)
	for _, id := range all {
		require.True(t, stored[id], "acknowledged task %s is stored after a restart", id)
	}
	t.Logf("%d acknowledged, %d stored after the restart", len(all), len(stored))
}

// TestHubSizesItsStreamsToTheVolume starts the hub on a 64 MiB volume,
// where it works, and on an 8 MiB one, which it refuses, naming the need.
func TestHubSizesItsStreamsToTheVolume(t *testing.T) {
	vol := mountTmpfs(t, 64)
	h := startHubProc(t, filepath.Join(vol, "data"))
	for i := range 50 {
		code, _, _, _, err := submitTimed(h, fmt.Sprintf("small volume %d", i))
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, code)
	}
	require.Len(t, h.list(t), 50)
	h.terminate(t)

	small := mountTmpfs(t, 8)
	cmd := exec.Command(bin, "hub", "--data-dir", filepath.Join(small, "data"), "--nats-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the hub refuses a volume it cannot use: %s", out)
	require.Contains(t, string(out), "the data directory's volume is too small")
	require.Contains(t, string(out), "the hub needs at least 14.0 MiB")
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// watchStoreFull subscribes, as an anonymous observer would with `nats sub
// 'agent_com.store.full'`, to the live store.full events. The TELEMETRY
// stream may drop them while the volume is full (telemetry is dropped and
// counted then), the live subject does not.
func watchStoreFull(t *testing.T, h *hubProc) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(h.natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("agent_com.store.full")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return sub
}

// requireStoreFullTelemetry waits for store.full with state writable.
func requireStoreFullTelemetry(t *testing.T, sub *nats.Subscription) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msg, err := sub.NextMsg(time.Until(deadline))
		require.NoError(t, err, "no store.full (writable) on agent_com.store.full")
		if strings.Contains(string(msg.Data), `"state":"writable"`) {
			return
		}
	}
}
