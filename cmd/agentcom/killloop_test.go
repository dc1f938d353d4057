package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// TestKillLoop kills the hub with SIGKILL at random moments while
// submitters load it over NATS and real sidecars work its queue, and
// restarts it on the same data directory and NATS port. After each
// restart every acknowledged task (read back from an fsynced log) is
// stored, no id is stored twice, and no task has two task.submitted or
// two task.completed events. At the end, with the load and the sidecars
// stopped, the live state equals an offline replay of the stopped hub's
// store. AGENTCOM_KILL_LOOPS sets the iterations (default 3; `task
// faults` runs 50) and AGENTCOM_KILL_SEED the kill times.
func TestKillLoop(t *testing.T) {
	t.Parallel()
	loops, seed := envInt(t, "AGENTCOM_KILL_LOOPS", 3), envInt(t, "AGENTCOM_KILL_SEED", int(time.Now().UnixNano()%1e9))
	t.Logf("kill loop: %d iterations, seed %d (AGENTCOM_KILL_SEED=%d repeats the kill delays)", loops, seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dir, addr := t.TempDir(), freeAddr(t)
	h := startHubProcOn(t, dir, addr, fastAgents)
	var sidecars []*sidecarProc
	for _, id := range []string{"k1", "k2", "k3"} {
		sidecars = append(sidecars, startTokenFileSidecar(t, h, id))
	}
	acks := openAckLog(t)
	load := startNATSLoad(t, h.natsURL, h.token, acks, 4)
	var readies []time.Duration
	for i := range loops {
		waitProgress(t, h, acks)
		delay := time.Duration(rng.IntN(1500)) * time.Millisecond
		time.Sleep(delay) // the point: a random moment in the load
		h.kill()
		acked := acks.read(t)
		f := checkStream(t, dir, acked) // offline, before the restart: no client may read the stream
		start := time.Now()
		h = startHubProcOn(t, dir, addr, fastAgents)
		readies = append(readies, time.Since(start))
		f = checkAfterRestart(t, h, acked, f)
		t.Logf("iteration %d: killed %v after progress; ready in %v; acked %d, stored %d, completed %d, queued %d",
			i+1, delay, readies[i].Round(time.Millisecond), f.acked, f.stored, f.completed, f.queued)
	}
	load.stop()
	for _, s := range sidecars {
		s.terminate(t)
	}
	final := requireLiveEqualsReplay(t, h, acks.read(t))
	slices.Sort(readies)
	t.Logf("kill loop summary: seed %d, %d kills, %d acked, 0 lost, %d stored, %d completed once each; ready after restart: median %v, max %v",
		seed, loops, final.acked, final.stored, final.completed, median(readies), readies[len(readies)-1].Round(time.Millisecond))
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q is not a number", name, v)
	return n
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)/2].Round(time.Millisecond)
}

// startTokenFileSidecar writes the agent's token with `token create --out`
// and starts a sidecar that reads it with --token-file and runs `cat`.
func startTokenFileSidecar(t *testing.T, h *hubProc, id string) *sidecarProc {
	t.Helper()
	file := filepath.Join(t.TempDir(), id+".token")
	_, errOut, code := cli(t, h, "token", "create", id, "--out", file)
	require.Equal(t, 0, code, errOut)
	return startSidecarArgs(t, id, "sidecar", "--agent-id", id, "--token-file", file, "--hub", h.natsURL,
		"--exec", "cat >/dev/null; echo done", "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--progress-interval", "200ms")
}

// waitProgress waits until the hub acknowledged a new submit and a
// sidecar completed a new task since the call: the hub and its sidecars
// are back at work before the next kill.
func waitProgress(t *testing.T, h *hubProc, acks *ackLog) {
	t.Helper()
	acked, done := acks.count(), completedCount(h)
	require.Eventually(t, func() bool { return acks.count() > acked && completedCount(h) > done },
		30*time.Second, 10*time.Millisecond, "no new acknowledged submit and completed task since the restart")
}

// completedCount is the live number of completed tasks, -1 if unknown.
func completedCount(h *hubProc) int {
	resp, err := http.Get(h.httpURL + "/api/tasks/stats")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var s struct {
		ByStatus map[string]int `json:"by_status"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return -1
	}
	return s.ByStatus["completed"]
}

// ackLog is the fsynced file of acknowledged task ids: an id is written
// and synced before it counts as acknowledged, so the log never holds
// less than the hub acknowledged.
type ackLog struct {
	mu   sync.Mutex
	f    *os.File
	path string
	n    int
}

func openAckLog(t *testing.T) *ackLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acked.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return &ackLog{f: f, path: path}
}

func (l *ackLog) add(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write([]byte(id + "\n")); err != nil {
		return fmt.Errorf("write ack log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync ack log: %w", err)
	}
	l.n++
	return nil
}

func (l *ackLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// read returns the ids in the log, from the file.
func (l *ackLog) read(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(l.path)
	require.NoError(t, err)
	return strings.Fields(string(b))
}

// natsLoad submits over the NATS API from several goroutines, each on
// its own reconnecting connection, so it follows the hub across restarts.
type natsLoad struct {
	quit chan struct{}
	wg   sync.WaitGroup
}

func startNATSLoad(t *testing.T, url, token string, acks *ackLog, workers int) *natsLoad {
	t.Helper()
	l := &natsLoad{quit: make(chan struct{})}
	for w := range workers {
		nc, err := nats.Connect(url, nats.Token(token), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		require.NoError(t, err)
		l.wg.Go(func() {
			defer nc.Close()
			l.submitUntilQuit(t, nc, acks, w)
		})
	}
	t.Cleanup(l.stop)
	return l
}

// submitUntilQuit paces one submitter at one request in flight and at
// most 40 a second, so the queue stays within what the sidecars work.
func (l *natsLoad) submitUntilQuit(t *testing.T, nc *nats.Conn, acks *ackLog, w int) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.quit:
			return
		case <-tick.C:
		}
		id, ok := submitNATS(nc, fmt.Sprintf(`{"description":"kill loop %d-%d","priority":%q}`, w, i, priorities[i%4]))
		if !ok {
			continue
		}
		if err := acks.add(id); err != nil {
			t.Error(err)
			return
		}
	}
}

// submitNATS sends one task.submit; ok is whether the hub acknowledged it.
func submitNATS(nc *nats.Conn, body string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m := nats.NewMsg(broker.Command(broker.CmdTaskSubmit))
	m.Data = []byte(body)
	resp, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil || resp.Header.Get(protocol.HeaderStatus) != strconv.Itoa(http.StatusCreated) {
		return "", false
	}
	var out struct {
		TaskID string `json:"task_id"`
	}
	if json.Unmarshal(resp.Data, &out) != nil || out.TaskID == "" {
		return "", false
	}
	return out.TaskID, true
}

func (l *natsLoad) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

// figures are one check's counts.
type figures struct{ acked, stored, completed, queued int }

// checkAfterRestart: every acknowledged id is stored once, and the event
// stream, read after the listing, has one submission per stored task and
// at most one completion per task (one for each task listed completed).
// checkStream reads the killed hub's events offline: every acknowledged
// task is in the stream, each task was submitted once and completed at
// most once.
func checkStream(t *testing.T, dir string, acked []string) figures {
	t.Helper()
	submitted, completed := eventCounts(t, dir, 0)
	for id, n := range submitted {
		require.Equal(t, 1, n, "task %s has %d task.submitted events", id, n)
	}
	for id, n := range completed {
		require.Equal(t, 1, n, "task %s completed %d times", id, n)
	}
	for _, id := range acked {
		require.Equal(t, 1, submitted[id], "acknowledged task %s is not in the stream", id)
	}
	return figures{acked: len(acked), stored: len(submitted), completed: len(completed)}
}

// checkAfterRestart checks the restarted hub lists every acknowledged
// task once.
func checkAfterRestart(t *testing.T, h *hubProc, acked []string, f figures) figures {
	t.Helper()
	stored := tasksOf(t, h)
	requireAckedStored(t, acked, requireUniqueTasks(t, stored))
	for _, task := range stored {
		if task.Status == "queued" {
			f.queued++
		}
	}
	return f
}

// tally checks a listing taken at seq against the events up to seq, read
// offline: the two agree both ways on the tasks and on which completed.
func tally(t *testing.T, acked []string, stored []listedTask, dir string, seq uint64) figures {
	t.Helper()
	submitted, completed := eventCounts(t, dir, seq)
	f := figures{acked: len(acked), stored: len(stored), completed: len(completed)}
	for _, task := range stored {
		require.Equal(t, 1, submitted[task.ID], "task %s is stored without its one task.submitted event", task.ID)
		require.Equal(t, task.Status == "completed", completed[task.ID] == 1,
			"task %s is %s with %d task.completed events", task.ID, task.Status, completed[task.ID])
		if task.Status == "queued" {
			f.queued++
		}
	}
	require.Len(t, submitted, len(stored), "stored tasks and task.submitted events up to seq %d", seq)
	return f
}

func requireUniqueTasks(t *testing.T, ts []listedTask) map[string]listedTask {
	t.Helper()
	byID := make(map[string]listedTask, len(ts))
	for _, task := range ts {
		_, dup := byID[task.ID]
		require.False(t, dup, "task %s is listed twice", task.ID)
		byID[task.ID] = task
	}
	return byID
}

func requireAckedStored(t *testing.T, acked []string, byID map[string]listedTask) {
	t.Helper()
	seen := make(map[string]bool, len(acked))
	var lost []string
	for _, id := range acked {
		require.False(t, seen[id], "the hub acknowledged task id %s twice", id)
		seen[id] = true
		if _, ok := byID[id]; !ok {
			lost = append(lost, id)
		}
	}
	require.Empty(t, lost, "%d of %d acknowledged tasks are not stored", len(lost), len(acked))
}

// eventCounts reads the events of a stopped hub's data dir up to until
// (0: the end), offline as replay does (no client token may read the
// stream): task.submitted and task.completed events per task.
func eventCounts(t *testing.T, dir string, until uint64) (submitted, completed map[string]int) {
	t.Helper()
	store, _, closeStore := openStoreOffline(t, dir)
	defer closeStore()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	submitted, completed = map[string]int{}, map[string]int{}
	require.NoError(t, store.Read(ctx, broker.ReadOpts{Until: until}, func(env domain.Envelope) error {
		switch env.Type {
		case domain.TypeTaskSubmitted:
			submitted[env.Aggregate]++
		case domain.TypeTaskCompleted:
			completed[env.Aggregate]++
		}
		return nil
	}))
	return submitted, completed
}

// openStoreOffline opens a stopped hub's event store in the test, as the
// offline commands do: locked, on an embedded server of its own.
func openStoreOffline(t *testing.T, dir string) (*broker.EventStore, *nats.Conn, func()) {
	t.Helper()
	unlock, err := broker.LockDataDir(dir)
	require.NoError(t, err)
	auth := broker.NewAuthenticator()
	srv, err := broker.StartServer(broker.ServerConfig{DataDir: dir, Auth: auth, Log: logsink.Nop()})
	require.NoError(t, err)
	nc, err := srv.ConnectInProcess(auth.HubSecret(), "test-offline")
	require.NoError(t, err)
	store, err := broker.ExistingEventStore(context.Background(), nc)
	require.NoError(t, err)
	return store, nc, func() { nc.Close(); srv.Shutdown(); unlock() }
}

// requireLiveEqualsReplay takes the live state at one sequence (the
// hub's last applied sequence is the same before and after the reads),
// stops the hub cleanly and compares an offline replay to that sequence:
// the same tasks with the same statuses, and the same counts by status.
func requireLiveEqualsReplay(t *testing.T, h *hubProc, acked []string) figures {
	t.Helper()
	var live []listedTask
	var stats map[string]int
	var seq uint64
	require.Eventually(t, func() bool {
		before := liveSeq(t, h)
		live, stats = tasksOf(t, h), liveStats(t, h)
		seq = liveSeq(t, h)
		return before == seq
	}, 30*time.Second, 50*time.Millisecond, "the hub's state never held still")
	requireAckedStored(t, acked, requireUniqueTasks(t, live))
	h.terminate(t)
	f := tally(t, acked, live, h.dataDir, seq)
	var res struct {
		State struct{ Tasks []listedTask }
		Stats struct {
			ByStatus map[string]int `json:"by_status"`
		}
	}
	jsonOut(t, h, &res, "replay", "--data-dir", h.dataDir, "--until-seq", itoa(seq), "--json")
	require.Equal(t, idsStatuses(live), idsStatuses(res.State.Tasks), "live tasks at seq %d differ from the replay", seq)
	require.Equal(t, stats, res.Stats.ByStatus, "live counts by status at seq %d differ from the replay", seq)
	t.Logf("final: live state at seq %d equals the offline replay: %d tasks, by status %v", seq, len(live), stats)
	return f
}

func liveSeq(t *testing.T, h *hubProc) uint64 {
	t.Helper()
	resp, err := http.Get(h.httpURL + "/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		LastSeq uint64 `json:"last_seq"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.LastSeq
}

func liveStats(t *testing.T, h *hubProc) map[string]int {
	t.Helper()
	resp, err := http.Get(h.httpURL + "/api/tasks/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s struct {
		ByStatus map[string]int `json:"by_status"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s.ByStatus
}
