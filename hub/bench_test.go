package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// benchParallelism is the number of concurrent submitters per CPU: enough
// callers to show what group commit does for commands that arrive
// together.
const benchParallelism = 32

var benchBody = []byte(`{"description":"summarise the build log and open an issue for each new failure",` +
	`"priority":"normal","metadata":{"repo":"agentcom","branch":"main"},"needed_capabilities":["go"]}`)

// BenchmarkSubmit measures task submit throughput through the whole write
// path (decode, validate, decide, durable append, apply, reply), in
// process and over NATS on TCP, beside raw JetStream publishes of a
// payload of the same size to a stream with the same settings, for both
// durability settings. Throughput is 1e9/ns_op, also reported as ops/s.
func BenchmarkSubmit(b *testing.B) {
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=1s", time.Second}} {
		b.Run(sync.name+"/inproc", func(b *testing.B) { benchInproc(b, sync.interval) })
		b.Run(sync.name+"/tcp", func(b *testing.B) { benchTCP(b, sync.interval) })
		b.Run(sync.name+"/raw-js-inproc", func(b *testing.B) { benchRaw(b, sync.interval, false) })
		b.Run(sync.name+"/raw-js-tcp", func(b *testing.B) { benchRaw(b, sync.interval, true) })
	}
}

func benchInproc(b *testing.B, interval time.Duration) {
	h := startHubWith(b, "", interval, logsink.LevelInfo)
	ctx := context.Background()
	runParallel(b, func() {
		if r := h.api.Submit(ctx, "admin", benchBody); r.Status != 201 {
			b.Fatalf("submit: %d %v", r.Status, r.Body)
		}
	})
	reportGroups(b, h)
}

// reportGroups reports the mean number of commands per group commit.
func reportGroups(b *testing.B, h *testHub) {
	if st := h.svc.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Commands)/float64(st.Commits), "cmds/commit")
	}
}

func benchTCP(b *testing.B, interval time.Duration) {
	h := startHubWith(b, "", interval, logsink.LevelInfo)
	conns := dialN(b, h.NATSURL(), h.token, 4)
	var next atomic.Uint64
	subject := broker.Command(broker.CmdTaskSubmit)
	runParallel(b, func() {
		nc := conns[next.Add(1)%uint64(len(conns))]
		resp, err := nc.Request(subject, benchBody, 10*time.Second)
		if err != nil || resp.Header.Get(protocol.HeaderStatus) != "201" {
			b.Fatalf("submit over tcp: %v", err)
		}
	})
	reportGroups(b, h)
}

// benchRaw is the baseline: one synchronous JetStream publish per op, each
// waiting for its ack, into a stream configured like the events stream.
func benchRaw(b *testing.B, interval time.Duration, tcp bool) {
	h := startHubWith(b, "", interval, logsink.LevelInfo)
	nc := h.nc
	if tcp {
		nc = rawTCPConn(b, interval)
	}
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, Duplicates: 10 * time.Minute})
	require.NoError(b, err)
	payload := make([]byte, 420) // about the size of one stored submit event
	var n atomic.Uint64
	runParallel(b, func() {
		subject := fmt.Sprintf("bench.%d", n.Add(1))
		if _, err := js.Publish(context.Background(), subject, payload); err != nil {
			b.Fatalf("publish: %v", err)
		}
	})
}

func runParallel(b *testing.B, op func()) {
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// rawTCPConn connects over TCP to a plain embedded server with the hub's
// store settings. No client token has the JetStream API (docs/durability.md,
// who may write or remove events), so the raw baseline over TCP cannot
// create its stream on the hub's server.
func rawTCPConn(b *testing.B, interval time.Duration) *nats.Conn {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.TempDir(),
		SyncAlways: interval == 0, SyncInterval: interval, NoLog: true, NoSigs: true})
	require.NoError(b, err)
	ns.Start()
	b.Cleanup(ns.Shutdown)
	require.True(b, ns.ReadyForConnections(10*time.Second), "raw server not ready")
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(b, err)
	b.Cleanup(nc.Close)
	return nc
}

func dialN(b testing.TB, url, token string, n int) []*nats.Conn {
	conns := make([]*nats.Conn, n)
	for i := range conns {
		nc, err := nats.Connect(url, nats.Token(token))
		require.NoError(b, err)
		b.Cleanup(nc.Close)
		conns[i] = nc
	}
	return conns
}
