package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// floodSize is the flood of issue 11, case 5.
const floodSize = 10_000

// logLines are the hub's log lines that match keep, decoded.
func logLines(h *testHub, keep func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, line := range h.logs.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && keep(m) {
			out = append(out, m)
		}
	}
	return out
}

func aboutAgent(id string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["agent_id"] == id || strings.Contains(detailOf(m), id) }
}

// dialRaw connects with an agent's token and no hello: the flooder.
func dialRaw(t testing.TB, h *testHub, id string) (*nats.Conn, string) {
	t.Helper()
	token, _, err := h.tokens.CreateAgent(context.Background(), id)
	require.NoError(t, err)
	nc, err := nats.Connect(h.NATSURL(), nats.Token(token), nats.CustomInboxPrefix(broker.AgentInbox(id)),
		nats.NoReconnect(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc, token
}

// floodMsg is the i-th message of a flood from agent id: bad JSON, a
// 1 MiB body, an unknown verb, JetStream headers, a foreign reply
// subject, a publish its permissions deny.
func floodMsg(id string, i int, big []byte) *nats.Msg {
	inbox := broker.AgentInbox(id) + ".r"
	m := nats.NewMsg(broker.AgentRequest(id, broker.VerbHello))
	m.Reply, m.Data = inbox, []byte(`{"session":`)
	switch i % 6 {
	case 1:
		m.Subject, m.Data = broker.AgentRequest(id, broker.VerbHeartbeat), big
	case 2:
		m.Subject = broker.AgentRequest(id, "launch")
	case 3:
		m.Subject, m.Data = broker.AgentRequest(id, broker.VerbProgress), []byte(`{"task_id":"t1","generation":1}`)
		m.Header.Set("Nats-Rollup", "sub")
		m.Header.Set("Nats-Expected-Last-Sequence", "1")
	case 4:
		m.Reply = broker.TaskEvents("t1")
	case 5:
		m.Subject, m.Reply = broker.TaskEvents("t1"), ""
	}
	return m
}

// latencies times n heartbeats of a, spaced so that a stays inside its
// own request budget.
func latencies(t testing.TB, a *testAgent, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		code, body := a.request(broker.VerbHeartbeat, protocol.Heartbeat{Session: a.session})
		out = append(out, time.Since(start))
		require.Equal(t, 200, code, string(body))
		time.Sleep(25 * time.Millisecond) // 40 a second, under agents.request_rate
	}
	return out
}

func p99(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// flood sends floodSize bad messages from the flooder while the victim
// times heartbeats; it returns the victim's latencies before and during,
// and how many messages went out (a disconnect ends the flood early).
func flood(t testing.TB, victim *testAgent, flooder *nats.Conn, samples int) (baseline, during []time.Duration, sent int) {
	baseline = latencies(t, victim, samples)
	big := make([]byte, 1<<20)
	done := make(chan int, 1)
	go func() {
		for i := range floodSize {
			if flooder.PublishMsg(floodMsg("flood", i, big)) != nil {
				done <- i
				return
			}
		}
		_ = flooder.Flush()
		done <- floodSize
	}()
	for sent = -1; sent < 0 || len(during) < samples; {
		during = append(during, latencies(t, victim, 10)...)
		if sent < 0 {
			select {
			case sent = <-done:
			default:
			}
		}
	}
	t.Logf("victim heartbeat p99: baseline %s, during the flood %s (%d requests); %d flood messages sent",
		p99(baseline), p99(during), len(during), sent)
	return baseline, during, sent
}

// TestFloodIsContained: 10,000 bad messages from one agent token; past
// the threshold (the default, 10) its connection is closed and it is
// refused: nothing is appended, and the flood leaves a handful of log
// lines. What it costs another agent is BenchmarkFloodVictim's figure: a
// timed assertion would fail on a busy machine.
func TestFloodIsContained(t *testing.T) {
	h := startHubCfg(t, "", logsink.LevelDebug, func(*config.Hub) {})
	victim := newTestAgent(t, h, "victim", nil, ignore)
	flooder, _ := dialRaw(t, h, "flood")
	before, err := h.Store().Info(context.Background())
	require.NoError(t, err)
	flood(t, victim, flooder, 60)
	require.True(t, flooder.IsClosed(), "the flooder was disconnected")
	lines := logLines(h, aboutAgent("flood"))
	require.NotEmpty(t, lines)
	require.LessOrEqual(t, len(lines), 5, "a handful of lines, not one per message: %v", lines)
	after, err := h.Store().Info(context.Background())
	require.NoError(t, err)
	require.Equal(t, before.State.LastSeq, after.State.LastSeq, "the flood appended nothing")
}

// TestFloodWithoutThresholdIsCounted: with the threshold off every one
// of the 10,000 messages reaches the hub and is refused there: nothing
// is appended, and a handful of summary lines count the whole flood.
// The victim's p99 is logged, not asserted: the flood runs to its end and
// keeps both cores busy (BenchmarkFloodVictim, docs/decisions.md).
func TestFloodWithoutThresholdIsCounted(t *testing.T) {
	h := startHubCfg(t, "", logsink.LevelDebug, func(c *config.Hub) {
		c.Agents.ViolationThreshold = 0
		c.Agents.ViolationLogInterval = 2 * time.Second
	})
	victim := newTestAgent(t, h, "victim", nil, ignore)
	flooder, _ := dialRaw(t, h, "flood")
	before, err := h.Store().Info(context.Background())
	require.NoError(t, err)
	start := time.Now()
	_, _, sent := flood(t, victim, flooder, 60)
	require.Equal(t, floodSize, sent)
	require.Eventually(t, func() bool {
		return countOf(logLines(h, aboutAgent("flood"))) == floodSize
	}, 60*time.Second, 100*time.Millisecond, "the summaries count every message of the flood")
	lines := logLines(h, aboutAgent("flood"))
	// One line at once, then one summary an interval however slow the
	// machine, and the server's own stall warning.
	most := 3 + int(time.Since(start)/(2*time.Second))
	require.LessOrEqual(t, len(lines), most, "a handful of lines, not one per message: %v", lines)
	for _, l := range lines {
		if l["module"] == "nats" { // the server's own, once: "Producer was stalled"
			require.NotContains(t, detailOf(l), "Violation", l)
			continue
		}
		require.Equal(t, "warning", l["severity"], l)
		require.Equal(t, "agents", l["module"], l)
	}
	after, err := h.Store().Info(context.Background())
	require.NoError(t, err)
	require.Equal(t, before.State.LastSeq, after.State.LastSeq, "the flood appended nothing")
}

// TestFloodingAgentDisconnected: past the threshold the agent's
// connection is closed and it is refused until its cooldown is over;
// other agents go on.
func TestFloodingAgentDisconnected(t *testing.T) {
	h := startHubCfg(t, "", logsink.LevelDebug, func(c *config.Hub) {
		c.Agents.ViolationCooldown = 3 * time.Second
	})
	victim := newTestAgent(t, h, "victim", nil, ignore)
	flooder, token := dialRaw(t, h, "flood")
	for i := range 50 {
		if flooder.PublishMsg(floodMsg("flood", i, []byte("x"))) != nil {
			break // closed already
		}
	}
	require.Eventually(t, flooder.IsClosed, 10*time.Second, 20*time.Millisecond, "the flooder is disconnected")
	_, err := nats.Connect(h.NATSURL(), nats.Token(token))
	require.ErrorContains(t, err, "Authorization Violation", "refused during the cooldown")
	lines := logLines(h, func(m map[string]any) bool {
		return m["agent_id"] == "flood" && m["message"] == "agent disconnected for violations, refused for the cooldown"
	})
	require.Len(t, lines, 1)
	require.EqualValues(t, 3000, lines[0]["cooldown_ms"])
	require.Equal(t, 200, victim.call(broker.VerbHeartbeat, protocol.Heartbeat{Session: victim.session}))
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(h.NATSURL(), nats.Token(token))
		if err != nil {
			return false
		}
		nc.Close()
		return true
	}, 30*time.Second, 200*time.Millisecond, "let in again after the cooldown")
}

// TestDeniedPublishIsHubLine: a publish an agent's permissions deny is
// the hub's own warning with the agent's id, the operation and the
// subject; the server's free-text line is gone; 33 in a row give one
// line at once and one summary.
func TestDeniedPublishIsHubLine(t *testing.T) {
	h := startHubCfg(t, "", logsink.LevelDebug, func(c *config.Hub) {
		c.Agents.ViolationThreshold = 0
		c.Agents.ViolationLogInterval = time.Second
	})
	nc, _ := dialRaw(t, h, "nosy")
	tel, err := nats.Connect(h.NATSURL(), nats.Token(h.token))
	require.NoError(t, err)
	defer tel.Close()
	events, err := tel.SubscribeSync(broker.TelemetryPrefix + "agent.violation")
	require.NoError(t, err)
	require.NoError(t, tel.Flush())
	for range 33 {
		require.NoError(t, nc.Publish(broker.TaskEvents("t1"), []byte("{}")))
	}
	require.NoError(t, nc.Flush())
	require.Eventually(t, func() bool {
		return countOf(logLines(h, aboutAgent("nosy"))) == 33
	}, 30*time.Second, 50*time.Millisecond)
	lines := logLines(h, aboutAgent("nosy"))
	require.Len(t, lines, 2, "one line at once, one summary")
	require.Equal(t, "warning", lines[0]["severity"])
	require.Equal(t, "publish", lines[0]["op"])
	require.Equal(t, broker.TaskEvents("t1"), lines[0]["subject"])
	require.Equal(t, "permission", lines[0]["kind"])
	require.Empty(t, logLines(h, func(m map[string]any) bool { return strings.Contains(detailOf(m), "Violation") }))
	msg, err := events.NextMsg(10 * time.Second)
	require.NoError(t, err)
	require.Contains(t, string(msg.Data), `"agent_id":"nosy"`)
}

func detailOf(m map[string]any) string {
	s, _ := m["detail"].(string)
	return s
}

// countOf adds up the violation counts of summary lines; a line about the
// agent that is no summary counts as one line of its own.
func countOf(lines []map[string]any) int {
	total := 0
	for _, l := range lines {
		n, _ := l["count"].(float64)
		total += int(n)
	}
	return total
}

// victimSamples is how many heartbeats BenchmarkFloodVictim times before
// and during the flood: enough that its p99 is not one stray pause.
const victimSamples = 300

// BenchmarkFloodVictim measures what a 10,000-message flood from one
// agent costs another agent's heartbeat, with the default threshold
// (the flooder is cut off) and with none: the p99 before and during, in
// ms. One op is one whole flood; use -benchtime 1x and -count.
func BenchmarkFloodVictim(b *testing.B) {
	for _, tc := range []struct {
		name      string
		threshold int
	}{{"threshold=10", 10}, {"threshold=off", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			var base, during []time.Duration
			for range b.N {
				h := startHubCfg(b, "", logsink.LevelWarning, func(c *config.Hub) { c.Agents.ViolationThreshold = tc.threshold })
				victim := newTestAgent(b, h, "victim", nil, ignore)
				flooder, _ := dialRaw(b, h, "flood")
				bl, dl, _ := flood(b, victim, flooder, victimSamples)
				base, during = append(base, bl...), append(during, dl...)
			}
			b.ReportMetric(float64(p99(base).Microseconds())/1000, "baseline-p99-ms")
			b.ReportMetric(float64(p99(during).Microseconds())/1000, "flood-p99-ms")
		})
	}
}
