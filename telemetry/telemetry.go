package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
)

// SubjectPrefix precedes every telemetry event's name: agent_com.<name>.
const SubjectPrefix = broker.TelemetryPrefix

// queueSize bounds the items (events, or Later's functions) waiting to
// be published.
const queueSize = 8192

// ackWait bounds the wait for the stream to take a batch.
const ackWait = 5 * time.Second

// The emitter wakes at an event, waits gather for more, then publishes
// what came: on a busy hub one wake-up and one flush carry a burst, not
// one each per event. The TELEMETRY stream gets the burst as messages of
// up to batchBytes, one event a line, not a stored message per event.
const (
	gather     = 2 * time.Millisecond
	batchBytes = 64 << 10
)

// Event is one telemetry event as published.
type Event struct {
	Event        string             `json:"event"`
	Time         time.Time          `json:"time"`
	Node         string             `json:"node"`
	Measurements map[string]float64 `json:"measurements"`
	Metadata     map[string]any     `json:"metadata"`
}

// Subject is the event's NATS subject.
func (e Event) Subject() string { return SubjectPrefix + e.Event }

// Handler receives events in process.
type Handler func(Event)

// item is what the queue holds: an event, a function that builds some,
// or a Flush waiting to be told.
type item struct {
	ev    Event
	build func(Writer)
	flush chan struct{}
}

// Emitter publishes events. The zero value and a nil *Emitter drop every
// event, so code can emit without checking whether telemetry is on.
type Emitter struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	node  string
	log   logsink.Logger
	queue chan item
	hurry chan struct{} // a Flush or Stop waits: publish without gathering
	done  chan struct{}
	// run goroutine only: the event being encoded, its encoding, and the
	// batch for the stream
	fields  Fields
	buf     []byte
	batch   []byte
	history string
	failing bool // the stream refused the last batch
	watched func(subject string) bool

	mu       sync.RWMutex
	handlers map[string]attached
	dropped  atomic.Uint64
	stopOnce sync.Once
	sendMu   sync.RWMutex // guards closed and the queue's close
	closed   bool
}

type attached struct {
	prefix string
	fn     Handler
}

// Option configures an emitter.
type Option func(*Emitter)

// PublishWhenWatched publishes an event on its own subject only while
// watched(subject) says someone subscribes to it. The TELEMETRY stream
// gets every event either way. An embedded server answers this for
// nothing, where a publish nobody receives costs the server a parse.
func PublishWhenWatched(watched func(subject string) bool) Option {
	return func(e *Emitter) { e.watched = watched }
}

// New returns a running emitter publishing on nc (nil: handlers only).
func New(nc *nats.Conn, node string, log logsink.Logger, opts ...Option) *Emitter {
	e := &Emitter{nc: nc, node: node, log: log.Module("telemetry"), queue: make(chan item, queueSize),
		hurry: make(chan struct{}, 1), done: make(chan struct{}), handlers: map[string]attached{}, history: broker.TelemetryHistory(node),
		watched: func(string) bool { return true }}
	e.fields.e = e
	if nc != nil {
		e.js, _ = jetstream.New(nc) // fails only on options, and there are none
	}
	for _, o := range opts {
		o(e)
	}
	go e.run()
	return e
}

// Emit queues a point event. Names are dotted: "task.submit".
func (e *Emitter) Emit(name string, measurements map[string]float64, metadata map[string]any) {
	if e == nil {
		return
	}
	if measurements == nil {
		measurements = map[string]float64{}
	}
	if metadata == nil {
		metadata = map[string]any{}
	}
	e.enqueue(item{ev: Event{Event: name, Time: time.Now().UTC(), Node: e.node, Measurements: measurements,
		Metadata: metadata}})
}

// Later runs build on the emitter's goroutine, with a Writer that encodes
// each event as it is written and publishes it at once. A hot path hands
// over the building of its events and pays for one queued item. A build
// that panics is reported at error.
func (e *Emitter) Later(build func(Writer)) {
	if e == nil {
		return
	}
	e.enqueue(item{build: build})
}

// enqueue never blocks: when the queue is full, or after Stop, the item
// is dropped and counted.
func (e *Emitter) enqueue(it item) {
	e.sendMu.RLock()
	defer e.sendMu.RUnlock()
	if e.closed {
		e.dropped.Add(1)
		return
	}
	select {
	case e.queue <- it:
	default:
		e.dropped.Add(1)
	}
}

// Dropped counts what never reached the stream: an event or a Later
// function (one each, whatever it would have written) that found the
// queue full or the emitter stopped, a Later function that panicked, and
// each event of a batch the stream did not take.
func (e *Emitter) Dropped() uint64 {
	if e == nil {
		return 0
	}
	return e.dropped.Load()
}

// Attach adds a handler for the events whose name starts with prefix
// ("" for all), under an id that Detach takes.
func (e *Emitter) Attach(id, prefix string, fn Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[id] = attached{prefix: prefix, fn: fn}
}

// Detach removes a handler.
func (e *Emitter) Detach(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.handlers, id)
}

// Flush waits until every event emitted before it is published and kept
// by the stream, or ctx ends.
func (e *Emitter) Flush(ctx context.Context) error {
	if e == nil {
		return nil
	}
	done := make(chan struct{})
	e.sendMu.RLock()
	if e.closed {
		e.sendMu.RUnlock()
		return fmt.Errorf("flush telemetry: the emitter is stopped")
	}
	select {
	case e.queue <- item{flush: done}:
		e.sendMu.RUnlock()
	case <-ctx.Done():
		e.sendMu.RUnlock()
		return fmt.Errorf("flush telemetry: %w", ctx.Err())
	}
	e.rush()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush telemetry: %w", ctx.Err())
	}
}

// Stop publishes what is queued, waits until the stream has it, and
// stops. Safe to call twice.
func (e *Emitter) Stop() {
	if e == nil {
		return
	}
	e.stopOnce.Do(func() {
		e.sendMu.Lock()
		e.closed = true
		close(e.queue)
		e.sendMu.Unlock()
		e.rush()
	})
	<-e.done
	if e.nc != nil {
		_ = e.nc.Flush()
	}
}

// rush tells the emitter not to gather before its next publish.
func (e *Emitter) rush() {
	select {
	case e.hurry <- struct{}{}:
	default:
	}
}

func (e *Emitter) run() {
	defer close(e.done)
	gathering := time.NewTimer(gather)
	for it := range e.queue {
		e.gather(gathering)
		e.take(it)
		for open := true; open; {
			select {
			case it, open = <-e.queue:
				if open {
					e.take(it)
				}
			default:
				open = false
			}
		}
		e.flush()
	}
}

// gather waits for more events to come, unless a Flush or Stop waits.
func (e *Emitter) gather(t *time.Timer) {
	t.Reset(gather)
	select {
	case <-t.C:
	case <-e.hurry:
		t.Stop()
	}
}

func (e *Emitter) take(it item) {
	switch {
	case it.flush != nil:
		e.flush()
		close(it.flush)
	case it.build != nil:
		e.build(it.build)
	default:
		e.send(e.fields.from(it.ev))
		e.dispatch(it.ev)
	}
}

// build runs a Later function; one that panics is reported and counted.
func (e *Emitter) build(fn func(Writer)) {
	defer func() {
		if r := recover(); r != nil {
			e.dropped.Add(1)
			e.log.Error().Str("panic", fmt.Sprint(r)).Msg("building telemetry events panicked")
		}
	}()
	fn(Writer{e})
}

// send publishes an encoded event on its subject, if watched, and adds it
// to the stream's batch.
func (e *Emitter) send(f *Fields) {
	e.buf = f.encode(e.buf[:0], e.node) // handlers of written events decode it
	if e.nc == nil {
		return
	}
	if subject := SubjectPrefix + f.name; e.watched(subject) {
		if err := e.nc.Publish(subject, e.buf); err != nil {
			e.dropped.Add(1)
		}
	}
	if len(e.batch)+len(e.buf) >= batchBytes {
		e.flush()
	}
	e.batch = append(append(e.batch, e.buf...), '\n')
}

// flush stores the batch in the TELEMETRY stream, one JSON event a line,
// and waits for the stream's ack (meanwhile the next batch gathers): what
// was flushed is kept, what the stream refused is counted.
func (e *Emitter) flush() {
	if len(e.batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackWait)
	defer cancel()
	_, err := e.js.Publish(ctx, e.history, e.batch, jetstream.WithRetryAttempts(0))
	if err != nil {
		e.dropped.Add(uint64(bytes.Count(e.batch, []byte{'\n'})))
	}
	if failing := err != nil; failing != e.failing { // log the changes, not every batch
		e.failing = failing
		if failing {
			e.log.Warning().Err(err).Msg("the TELEMETRY stream does not take telemetry; it is dropped and counted")
		} else {
			e.log.Notice().Msg("the TELEMETRY stream takes telemetry again")
		}
	}
	e.batch = e.batch[:0]
}

// dispatch runs the handlers; a panicking one is reported and kept.
func (e *Emitter) dispatch(ev Event) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for id, h := range e.handlers {
		if strings.HasPrefix(ev.Event, h.prefix) {
			e.call(id, h.fn, ev)
		}
	}
}

// watchedInProcess reports whether a handler takes events named name.
func (e *Emitter) watchedInProcess(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, h := range e.handlers {
		if strings.HasPrefix(name, h.prefix) {
			return true
		}
	}
	return false
}

func (e *Emitter) call(id string, fn Handler, ev Event) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error().Str("handler", id).Str("event", ev.Event).Str("panic", fmt.Sprint(r)).
				Msg("telemetry handler panicked; it stays attached")
		}
	}()
	fn(ev)
}

// Span runs fn as a timed operation: it emits <name>.start (with
// system_time), then <name>.stop with duration_ms and fn's metadata, or
// <name>.exception with duration_ms, kind and reason when fn fails. All
// three share a span_id.
func (e *Emitter) Span(name string, metadata map[string]any, fn func() (map[string]any, error)) error {
	span := fmt.Sprintf("%016x", time.Now().UnixNano()^int64(spanSeq.Add(1))<<20)
	start := time.Now()
	e.Emit(name+".start", map[string]float64{"system_time": float64(start.UnixMilli())}, with(metadata, "span_id", span))
	out, err := fn()
	took := map[string]float64{"duration_ms": ms(time.Since(start))}
	if err != nil {
		meta := with(with(metadata, "span_id", span), "kind", "error")
		e.Emit(name+".exception", took, with(meta, "reason", err.Error()))
		return err
	}
	meta := with(metadata, "span_id", span)
	for k, v := range out {
		meta[k] = v
	}
	e.Emit(name+".stop", took, meta)
	return nil
}

var spanSeq atomic.Int64

// with returns a copy of m with one more key.
func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// ms is a duration in milliseconds, with fractions.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Ms is a duration in milliseconds, for measurements.
func Ms(d time.Duration) float64 { return ms(d) }
