package bench

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/domain"
)

// Raw publish settings: a payload about the size of a stored submit
// event, and how many async publishes may await their acks at once.
const (
	rawPayload = 420
	rawWindow  = 256
	// rawStallWait is how long a publish waits for room in a full window
	// (nats.go's default, 200ms, is less than one fsync can take on a
	// busy disk).
	rawStallWait = 10 * time.Second
)

// rawServer is a plain embedded JetStream server with the hub's store
// settings (sync, max payload) in a temporary directory, and a stream set
// up like the events stream. No client token of the hub may use the
// JetStream API, so the baseline runs beside the hub, not in it.
type rawServer struct {
	dir string
	ns  *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	err atomic.Value // the first async publish error
}

func startRaw(ctx context.Context, parent, sync string) (*rawServer, error) {
	dir, err := os.MkdirTemp(parent, "agentcom-bench-raw-")
	if err != nil {
		return nil, fmt.Errorf("create raw store dir: %w", err)
	}
	r := &rawServer{dir: dir}
	if err := r.start(ctx, sync); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *rawServer) start(ctx context.Context, sync string) error {
	interval := syncInterval(sync)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: r.dir,
		SyncAlways: interval == 0, SyncInterval: interval, MaxPayload: domain.MaxMessageBytes, NoLog: true, NoSigs: true})
	if err != nil {
		return fmt.Errorf("create raw server: %w", err)
	}
	r.ns = ns
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("start raw server: not ready after 10s")
	}
	if r.nc, err = nats.Connect(ns.ClientURL()); err != nil {
		return fmt.Errorf("connect to raw server: %w", err)
	}
	r.js, err = jetstream.New(r.nc, jetstream.WithPublishAsyncMaxPending(rawWindow),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			r.err.CompareAndSwap(nil, err)
		}))
	if err != nil {
		return fmt.Errorf("open raw jetstream: %w", err)
	}
	_, err = r.js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, Duplicates: 10 * time.Minute})
	if err != nil {
		return fmt.Errorf("create raw stream: %w", err)
	}
	return nil
}

func (r *rawServer) stop() {
	if r.nc != nil {
		r.nc.Close()
	}
	if r.ns != nil {
		r.ns.Shutdown()
		r.ns.WaitForShutdown()
	}
	_ = os.RemoveAll(r.dir)
}

// publishSync publishes n messages one at a time, each waiting for its
// ack, each on a subject of its own (as each task has one).
func (r *rawServer) publishSync(ctx context.Context, n int, done *atomic.Int64) error {
	payload := make([]byte, rawPayload)
	for i := range n {
		if _, err := r.js.Publish(ctx, fmt.Sprintf("bench.sync.%d", i), payload); err != nil {
			return fmt.Errorf("publish raw message: %w", err)
		}
		done.Add(1)
	}
	return nil
}

// publishAsync publishes n messages with at most rawWindow unacked (a
// publish waits for room), then waits for every ack.
func (r *rawServer) publishAsync(ctx context.Context, n int, done *atomic.Int64) error {
	payload := make([]byte, rawPayload)
	for i := range n {
		_, err := r.js.PublishAsync(fmt.Sprintf("bench.async.%d", i), payload, jetstream.WithStallWait(rawStallWait))
		if err != nil {
			return fmt.Errorf("publish raw message async: %w", err)
		}
		done.Add(1)
	}
	select {
	case <-r.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("wait for raw acks: %w", ctx.Err())
	}
	if err, _ := r.err.Load().(error); err != nil {
		return fmt.Errorf("raw async publish: %w", err)
	}
	return nil
}

// measureRaw runs both publish kinds for n messages on a fresh raw server.
func measureRaw(ctx context.Context, parent, sync string, n int, prog *progress) (*Raw, error) {
	r, err := startRaw(ctx, parent, sync)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	raw := &Raw{Messages: n, Bytes: rawPayload, AsyncWindow: rawWindow}
	if raw.SyncSeconds, err = prog.timed(StageRawSync, n, func(d *atomic.Int64) error { return r.publishSync(ctx, n, d) }); err != nil {
		return nil, err
	}
	if raw.AsyncSeconds, err = prog.timed(StageRawAsyn, n, func(d *atomic.Int64) error { return r.publishAsync(ctx, n, d) }); err != nil {
		return nil, err
	}
	raw.SyncPerS, raw.AsyncPerS = rate(n, raw.SyncSeconds), rate(n, raw.AsyncSeconds)
	return raw, nil
}

func rate(n int, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / seconds
}
