package hub

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
)

// BenchmarkMemory measures what the hub keeps per task, in one process
// with its embedded server (store.sync 1s, the default keep_finished):
//
//   - queued: the heap (in use, after a collection) per queued task,
//     settled: what n more queued tasks add to the heap and to the
//     process's resident memory (and, with-fixed, the heap's average over
//     all 2n, buffers allocated once included);
//   - completed: the heap growth per completed task once finished tasks
//     leave memory (between a first and a second round of the same size),
//     which is flat when nothing grows with the tasks kept.
//
// AGENTCOM_BENCH_TASKS sets the tasks of each round (default 20,000;
// 500000 twice is a million). The op is the whole measurement: run it
// with -benchtime 1x.
func BenchmarkMemory(b *testing.B) {
	n := benchTasks(b)
	b.Run("queued", func(b *testing.B) {
		for range b.N {
			benchMemoryQueued(b, n)
		}
	})
	b.Run("completed", func(b *testing.B) {
		for range b.N {
			benchMemoryCompleted(b, n)
		}
	})
}

// settle is how long the memory figures wait for the embedded server's
// caches and its duplicate window of message ids to let go: past the
// window, so that what remains is what stays.
const settle = broker.DuplicateWindow + 5*time.Second

func benchTasks(b *testing.B) int {
	if v := os.Getenv("AGENTCOM_BENCH_TASKS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("AGENTCOM_BENCH_TASKS=%q: want a positive number", v)
		}
		return n
	}
	return 20000
}

func benchMemoryQueued(b *testing.B, n int) {
	h := startHubOpts(b, "", logsink.LevelWarning, hubOpts{now: time.Now, paused: true},
		func(c *config.Hub) { c.Store.SyncInterval = time.Second })
	before := heapInUse()
	submitMany(b, h, n)
	after := heapInUse()
	b.ReportMetric(float64(after-before)/float64(n), "heap-B/queued-task")
	// The embedded server's block cache holds what was just written and
	// lets it go after a few idle seconds: what stays is the hub's.
	time.Sleep(settle)
	first, firstRSS := heapInUse(), processRSS(b) // heapInUse returns freed pages to the system first
	// What a queued task costs is the slope: the heap (and the resident
	// memory) that n more queued tasks add. The first n also pay for
	// buffers the store allocates once (the write block's 8 MiB cache,
	// whatever the queue's length).
	submitMany(b, h, n)
	time.Sleep(settle)
	second, secondRSS := heapInUse(), processRSS(b)
	b.ReportMetric((float64(second)-float64(first))/float64(n), "settled-heap-B/queued-task")
	b.ReportMetric((float64(secondRSS)-float64(firstRSS))/float64(n), "settled-rss-B/queued-task")
	b.ReportMetric((float64(second)-float64(before))/float64(2*n), "settled-heap-B/queued-task-with-fixed")
	b.ReportMetric(float64(second)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(processRSS(b))/(1<<20), "rss-MiB")
}

func benchMemoryCompleted(b *testing.B, n int) {
	h := startHubCfg(b, "", logsink.LevelWarning, func(c *config.Hub) {
		c.Store.SyncInterval = time.Second
		c.Agents.ReapAfter = 10 * time.Minute // its agents send no heartbeats through the settles
	})
	done := 0
	for i := range benchAgents {
		a := newTestAgent(b, h, fmt.Sprintf("bench-%d", i), nil, completeAtOnce)
		a.mu.Lock()
		a.forget = true // before any task: its records would count as the hub's
		a.mu.Unlock()
	}
	round := func() uint64 {
		submitMany(b, h, n)
		done += n
		waitCompleted(b, h, done)
		time.Sleep(settle)
		return heapInUse()
	}
	first := round()
	second := round()
	b.ReportMetric((float64(second)-float64(first))/float64(n), "heap-B/completed-task")
	b.ReportMetric(float64(first)/(1<<20), "heap-MiB-first")
	b.ReportMetric(float64(second)/(1<<20), "heap-MiB-second")
	b.ReportMetric(float64(processRSS(b))/(1<<20), "rss-MiB")
}

// submitMany submits n tasks from 32 goroutines.
func submitMany(b testing.TB, h *testHub, n int) {
	ctx := context.Background()
	body := []byte(`{"description":"memory benchmark task","priority":"normal"}`)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range next {
				if r := h.api.Submit(ctx, "admin", body); r.Status != 201 {
					b.Errorf("submit: %d %v", r.Status, r.Body)
					return
				}
			}
		})
	}
	wg.Wait()
}

// heapInUse is the heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// processRSS reads this process's resident set from /proc.
func processRSS(b *testing.B) uint64 {
	kb, err := rssKiB(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return kb << 10
}

// rssKiB reads a process's VmRSS (KiB) from /proc/PID/status.
func rssKiB(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("read process status: no VmRSS line")
}
