package hub

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// BenchmarkMessages sends b.N direct messages from one agent to another,
// eight in flight, and times each from the send request to the
// recipient's push: messages/s and the delivery latency (p50, p99). The
// raw sub-benchmark is the yardstick in the same run: core NATS publishes
// of the same body by the hub's connection to the agent's subscription
// (one hop of the two a message makes, without the store).
func BenchmarkMessages(b *testing.B) {
	body, _ := json.Marshal(protocol.Send{To: "to", Body: text("the tests pass on main; the release can go")})
	b.Run("send", func(b *testing.B) {
		h := startHubCfg(b, "", logsink.LevelWarning, func(c *config.Hub) {
			c.Store.SyncInterval, c.Agents.RequestRate = time.Second, 0 // no request budget: the bench sends flat out
		})
		from, to := newTestAgent(b, h, "from", nil, ignore), newTestAgent(b, h, "to", nil, ignore)
		benchDeliveries(b, to.nc, broker.Push("to", broker.PushMessage), func(i int) {
			if _, err := from.nc.Request(broker.AgentRequest("from", broker.VerbSend), body, 10*time.Second); err != nil {
				b.Errorf("send: %v", err)
			}
		})
	})
	b.Run("raw-nats", func(b *testing.B) {
		h := startHubWith(b, "", time.Second, logsink.LevelWarning)
		to := newTestAgent(b, h, "to", nil, ignore)
		benchDeliveries(b, to.nc, broker.Push("to", "raw"), func(int) {
			if err := h.nc.Publish(broker.Push("to", "raw"), body); err != nil {
				b.Errorf("publish: %v", err)
			}
		})
	})
}

// benchDeliveries runs b.N sends, eight at a time, and times the k-th
// delivery at sub from the k-th send's start (with eight in flight the
// store may order a few differently: the pairing is close, not exact),
// and reports the rate and the latency percentiles.
func benchDeliveries(b *testing.B, sub *nats.Conn, subject string, sendOne func(i int)) {
	var mu sync.Mutex
	sent := make([]time.Time, 0, b.N)
	lat := make([]float64, 0, b.N)
	done := make(chan struct{})
	_, err := sub.Subscribe(subject, func(*nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		lat = append(lat, float64(time.Since(sent[len(lat)]).Microseconds())/1000)
		if len(lat) == b.N {
			close(done)
		}
	})
	if err != nil || sub.Flush() != nil {
		b.Fatalf("subscribe: %v", err)
	}
	gate := make(chan struct{}, 8)
	var senders sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		gate <- struct{}{}
		mu.Lock()
		sent = append(sent, time.Now())
		mu.Unlock()
		senders.Go(func() { defer func() { <-gate }(); sendOne(i) })
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d delivered", len(lat), b.N)
	}
	elapsed := time.Since(start)
	senders.Wait() // the last replies, before the connections close
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	mu.Lock()
	slices.Sort(lat)
	mu.Unlock()
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "p99-ms")
}

// BenchmarkInbox reads an agent's mailbox while the stream holds others'
// messages and none for it: an answer at once, not a wait for a message
// that is not there.
func BenchmarkInbox(b *testing.B) {
	h := startHubWith(b, "", time.Second, logsink.LevelWarning)
	from, reader := newTestAgent(b, h, "from", nil, ignore), newTestAgent(b, h, "reader", nil, ignore)
	for range 100 {
		if st, body := from.request(broker.VerbSend, protocol.Send{To: "someone", Body: text("not for the reader")}); st != 200 {
			b.Fatalf("send: %d %s", st, body)
		}
	}
	b.ResetTimer()
	for range b.N {
		if st, body := reader.request(broker.VerbInbox, struct{}{}); st != 200 {
			b.Fatalf("inbox: %d %s", st, body)
		}
	}
}
