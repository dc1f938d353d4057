package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
)

// helloFleet connects n agents and has each say hello, a few at a time.
func helloFleet(tb testing.TB, h *testHub, n int) []*testAgent {
	tb.Helper()
	fleet := make([]*testAgent, n)
	var wg sync.WaitGroup
	next, quit := make(chan int), make(chan struct{})
	var once sync.Once
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A failed require ends the worker (Goexit): the others stop
			// being fed, and the test fails instead of hanging.
			defer once.Do(func() { close(quit) })
			for i := range next {
				fleet[i] = dialTestAgent(tb, h, fmt.Sprintf("storm-%d", i), ignore)
				require.Equal(tb, 200, fleet[i].hello(nil), "hello of storm-%d", i)
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-quit:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return fleet
}

// closeFleet closes every agent's connection at once and returns when
// the closing started.
func closeFleet(fleet []*testAgent) time.Time {
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, a := range fleet {
		wg.Add(1)
		go func() { defer wg.Done(); a.nc.Close() }()
	}
	wg.Wait()
	return t0
}

// onlineCount is how many agents the hub believes online.
func onlineCount(h *testHub) int {
	n := 0
	for _, a := range h.Agents().List() {
		if a.Online() {
			n++
		}
	}
	return n
}

// noReconcile leaves the disconnect advisories alone to do the work.
func noReconcile(cfg *config.Hub) { cfg.Agents.SweepInterval = time.Hour }

func TestDisconnectStormTakesEveryAgentOffline(t *testing.T) {
	t.Parallel()
	const n = 1000
	h := startHubCfg(t, "", logsink.LevelInfo, noReconcile)
	fleet := helloFleet(t, h, n)
	require.Equal(t, n, onlineCount(h))

	t0 := closeFleet(fleet)
	require.Eventually(t, func() bool { return onlineCount(h) == 0 }, 2*time.Second*raceFactor, time.Millisecond,
		"agents still online after the storm")
	t.Logf("%d agents offline %v after their connections closed", n, time.Since(t0))
}

func TestReconcileTakesOfflineAnAgentWhoseAdvisoryWasLost(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, fastLeases)
	lost := newTestAgent(t, h, "lost", nil, ignore)
	kept := newTestAgent(t, h, "kept", nil, ignore)
	h.coord.IgnoreDisconnects()

	lost.nc.Close()
	require.Eventually(t, func() bool {
		a, _, _ := h.Agents().Get("lost")
		return !a.Online()
	}, 10*time.Second, 5*time.Millisecond)
	a, _, _ := h.Agents().Get("kept")
	require.True(t, a.Online(), "an agent still connected was taken offline")
	require.True(t, kept.nc.IsConnected())
	require.Eventually(t, func() bool {
		for _, line := range h.logs.Lines() {
			if strings.Contains(line, `"agent disconnected (reconcile)"`) && strings.Contains(line, `"lost"`) {
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
}

// BenchmarkDisconnectStorm closes 1,000 agents' connections at once and
// reports the time until the hub has them all offline, and that time per
// disconnect.
func BenchmarkDisconnectStorm(b *testing.B) {
	const n = 1000
	var total time.Duration
	for range b.N {
		b.StopTimer()
		h := startHubCfg(b, "", logsink.LevelWarning, noReconcile)
		fleet := helloFleet(b, h, n)
		b.StartTimer()
		t0 := closeFleet(fleet)
		require.Eventually(b, func() bool { return onlineCount(h) == 0 }, time.Minute, 100*time.Microsecond)
		total += time.Since(t0)
		b.StopTimer()
		h.Stop()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-all-offline")
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*n), "ns/disconnect")
}
