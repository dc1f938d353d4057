package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var priorities = []string{"low", "urgent", "normal", "high"}

var rank = map[string]int{"urgent": 0, "high": 1, "normal": 2, "low": 3}

// TestKillNineKeepsAcknowledgedTasks submits tasks, kills the hub with
// SIGKILL in the middle of a concurrent load, restarts it, and checks
// that every acknowledged task is back with its id, status and order.
func TestKillNineKeepsAcknowledgedTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProc(t, dir)

	for i := range 20 {
		code, out, err := h.post("/api/tasks", fmt.Sprintf(`{"description":"seq %d","priority":%q}`, i, priorities[i%4]))
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, code, out)
	}
	first := h.list(t)
	code, _, err := h.post("/api/tasks/"+first[3].ID+"/cancel", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	first[3].Status = "cancelled"

	l := startLoad(h, 8)
	require.Eventually(t, func() bool { return l.count() >= 100 }, 30*time.Second, 5*time.Millisecond)
	h.kill() // SIGKILL while the load is still submitting
	acked := l.stop()
	require.GreaterOrEqual(t, len(acked), 100)

	again := startHubProc(t, dir)
	after := again.list(t)
	byID := map[string]listedTask{}
	for _, task := range after {
		byID[task.ID] = task
	}
	for id, prio := range acked {
		task, ok := byID[id]
		require.True(t, ok, "acknowledged task %s is missing after kill -9", id)
		require.Equal(t, "queued", task.Status)
		require.Equal(t, prio, task.Priority)
	}
	// The first tasks keep their status and their relative order.
	var kept []listedTask
	for _, task := range after {
		for _, f := range first {
			if f.ID == task.ID {
				kept = append(kept, task)
			}
		}
	}
	require.Equal(t, first, kept)
	// The whole list is urgent, high, normal, low; FIFO within each.
	for i := 1; i < len(after); i++ {
		a, b := after[i-1], after[i]
		require.LessOrEqual(t, rank[a.Priority], rank[b.Priority], "priority order at %d", i)
		if a.Priority == b.Priority {
			require.False(t, b.CreatedAt.Before(a.CreatedAt), "FIFO within %s at %d", a.Priority, i)
		}
	}
}

// loadGen submits from several goroutines until stopped, remembering
// every submit that was acknowledged (with its priority). Submits in
// flight when the hub dies simply fail.
type loadGen struct {
	mu    sync.Mutex
	acked map[string]string
	quit  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(h *hubProc, workers int) *loadGen {
	l := &loadGen{acked: map[string]string{}, quit: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.quit:
					return
				default:
				}
				prio := priorities[(w+i)%4]
				code, out, err := h.post("/api/tasks", fmt.Sprintf(`{"description":"load %d-%d","priority":%q}`, w, i, prio))
				if err == nil && code == http.StatusCreated {
					l.mu.Lock()
					l.acked[out["task_id"].(string)] = prio
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

func (l *loadGen) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *loadGen) stop() map[string]string {
	close(l.quit)
	l.wg.Wait()
	return l.acked
}
