package guard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func testConfig() Config {
	return Config{Rate: 10, Burst: 5, Threshold: 10, Window: time.Minute, Cooldown: 30 * time.Second, LogEvery: 10 * time.Second}
}

func TestBucketAllowsBurstThenRate(t *testing.T) {
	c := newClock()
	g := New(testConfig(), c.now)
	for i := range 5 {
		require.True(t, g.Allow("a1"), "request %d of the burst", i)
	}
	require.False(t, g.Allow("a1"), "the burst is spent")
	require.True(t, g.Allow("a2"), "another agent has its own budget")
	c.add(100 * time.Millisecond) // one token at 10/s
	require.True(t, g.Allow("a1"))
	require.False(t, g.Allow("a1"))
}

func TestNoRateMeansNoBudget(t *testing.T) {
	cfg := testConfig()
	cfg.Rate = 0
	g := New(cfg, newClock().now)
	for range 1000 {
		require.True(t, g.Allow("a1"))
	}
}

func TestRecordReportsOncePerIntervalWithCount(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Threshold = 0
	g := New(cfg, c.now)
	r, now := g.Record("a1", Violation{Kind: KindMalformed, Op: "hello"})
	require.True(t, now, "the first violation is logged at once")
	require.Equal(t, 1, r.Count)
	for range 99 {
		_, now = g.Record("a1", Violation{Kind: KindUnknownVerb, Op: "nope"})
		require.False(t, now, "later ones wait for the summary")
	}
	require.Empty(t, g.Flush(), "the interval has not ended")
	c.add(10 * time.Second)
	reports := g.Flush()
	require.Len(t, reports, 1)
	require.Equal(t, "a1", reports[0].AgentID)
	require.Equal(t, 99, reports[0].Count)
	require.Equal(t, map[string]int{KindUnknownVerb: 99}, reports[0].Kinds)
	require.Equal(t, "nope", reports[0].Last.Op)
	require.Empty(t, g.Flush(), "nothing is reported twice")
}

func TestThresholdDisconnectsWithGrowingCooldown(t *testing.T) {
	c := newClock()
	g := New(testConfig(), c.now)
	for _, want := range []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute, 5 * time.Minute} {
		var last Report
		for i := range 10 {
			r, now := g.Record("a1", Violation{Kind: KindPermission, Op: "publish", Subject: "x"})
			if i < 9 {
				require.False(t, r.Disconnect, "violation %d is under the threshold", i+1)
				continue
			}
			require.True(t, now)
			last = r
		}
		require.True(t, last.Disconnect)
		require.Equal(t, want, last.Cooldown)
		until, refused := g.Refused("a1")
		require.True(t, refused)
		require.Equal(t, c.t.Add(want), until)
		_, refused = g.Refused("a2")
		require.False(t, refused, "other agents are not refused")
		c.add(want)
		_, refused = g.Refused("a1")
		require.False(t, refused, "the cooldown is over")
	}
}

func TestWindowForgetsOldViolations(t *testing.T) {
	c := newClock()
	g := New(testConfig(), c.now)
	for range 9 {
		g.Record("a1", Violation{Kind: KindMalformed})
	}
	c.add(time.Minute)
	r, _ := g.Record("a1", Violation{Kind: KindMalformed})
	require.False(t, r.Disconnect, "the ninth was a window ago")
	_, refused := g.Refused("a1")
	require.False(t, refused)
}

func TestFlushForgetsQuietAgents(t *testing.T) {
	c := newClock()
	g := New(testConfig(), c.now)
	g.Allow("a1")
	c.add(forgetAfter)
	g.Flush()
	g.mu.Lock()
	defer g.mu.Unlock()
	require.NotContains(t, g.agents, "a1")
}
