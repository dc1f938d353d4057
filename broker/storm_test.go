package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker/brokertest"
)

// goneSet collects the agents WatchAgentDisconnects reports.
type goneSet struct {
	mu  sync.Mutex
	ids map[string]int
}

func (g *goneSet) add(id, _ string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ids[id]++
}

func (g *goneSet) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ids)
}

// dialAgents connects n agents, each with its own token.
func dialAgents(tb testing.TB, b *brokertest.Bundle, n int) []*nats.Conn {
	tb.Helper()
	conns := make([]*nats.Conn, n)
	for i := range conns {
		conns[i] = b.Dial(tb, agentToken(b, fmt.Sprintf("storm-%d", i)))
	}
	return conns
}

// closeAll closes every connection at once and returns when it started.
func closeAll(conns []*nats.Conn) time.Time {
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, nc := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); nc.Close() }()
	}
	wg.Wait()
	return t0
}

// waitKnown waits until the watch has counted every connection opened.
func waitKnown(tb testing.TB, b *brokertest.Bundle, n int) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		for i := range n {
			if b.Server.KnownConnections(fmt.Sprintf("storm-%d", i)) != 1 {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond)
}

func TestDisconnectStormIsReportedAtOnce(t *testing.T) {
	t.Parallel()
	const n = 1000
	b := brokertest.Start(t, 0)
	gone := &goneSet{ids: map[string]int{}}
	// Half the agents connect before the watch starts: it must count them too.
	early := dialAgents(t, b, n/2)
	sys, err := b.Server.WatchAgentDisconnects(gone.add, func(err error) { t.Errorf("advisories: %v", err) })
	require.NoError(t, err)
	defer sys.Close()
	conns := append(early, make([]*nats.Conn, 0, n/2)...)
	for i := n / 2; i < n; i++ {
		conns = append(conns, b.Dial(t, agentToken(b, fmt.Sprintf("storm-%d", i))))
	}
	waitKnown(t, b, n)

	t0 := closeAll(conns)
	require.Eventually(t, func() bool { return gone.len() == n }, 10*time.Second, time.Millisecond)
	took := time.Since(t0)
	t.Logf("%d disconnects reported in %v", n, took)
	require.Less(t, took, 2*time.Second*raceFactor)
	for id, times := range gone.ids {
		require.Equal(t, 1, times, id)
	}
}

func TestConnectedAgentSetPagesThroughAll(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	dialAgents(t, b, 5000) // more than one page
	set, err := b.Server.ConnectedAgentSet()
	require.NoError(t, err)
	require.Len(t, set, 5000)
	require.True(t, set["storm-4999"])
	require.Equal(t, 1, b.Server.KnownConnections("storm-0")) // no watch: asks the server
}

// BenchmarkDisconnectStorm closes 1,000 agent connections at once and
// reports the time until the last disconnect is reported, and that time
// per disconnect.
func BenchmarkDisconnectStorm(b *testing.B) {
	const n = 1000
	bundle := brokertest.Start(b, 0)
	gone := &goneSet{ids: map[string]int{}}
	sys, err := bundle.Server.WatchAgentDisconnects(gone.add, nil)
	require.NoError(b, err)
	defer sys.Close()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		gone.mu.Lock()
		gone.ids = map[string]int{}
		gone.mu.Unlock()
		conns := dialAgents(b, bundle, n)
		waitKnown(b, bundle, n)
		b.StartTimer()
		t0 := closeAll(conns)
		require.Eventually(b, func() bool { return gone.len() == n }, time.Minute, 50*time.Microsecond)
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-all-gone")
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*n), "ns/disconnect")
}
