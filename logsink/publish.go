package logsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishFlushTimeout bounds Flush and Close.
const publishFlushTimeout = 5 * time.Second

// Lines are published in records of several lines each: a record goes
// out when it reaches recordMaxBytes, or recordDelay after its first line,
// whichever comes first (and at Flush, Stored and Close). One stored
// message per line cost the hub a third of its throughput with store.sync
// 1s; a record per few milliseconds costs it next to nothing.
const (
	recordMaxBytes = 64 << 10
	recordDelay    = 5 * time.Millisecond
)

// Publisher is an io.Writer that publishes log lines on one NATS subject,
// where the LOGS stream stores them until the Sink writes them to the log
// file. Each Write is one line, as zerolog writes them: one JSON object
// and a newline. Lines are gathered into records: a record is one or more
// lines, each ending with a newline except the last.
//
// Publishing is core NATS, fire and forget: a Write never waits for the
// server and never fails. A line that cannot be published (connection
// closed, reconnect buffer full, line over the server's payload limit) is
// counted in Dropped. After Close, lines go to the fallback writer instead.
// Lines still gathering when the process dies (at most recordDelay's
// worth) are on stdout but not in the stream.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	nc      *nats.Conn
	subject string

	mu       sync.Mutex // guards everything below
	closed   bool
	fallback io.Writer
	record   []byte // the lines gathering, each newline-terminated
	lines    int    // how many lines record holds
	timer    *time.Timer

	dropped atomic.Uint64
}

// NewPublisher returns a Publisher on subject, such as broker.LogHub(node)
// or broker.LogAgent(agentID).
func NewPublisher(nc *nats.Conn, subject string) *Publisher {
	return &Publisher{nc: nc, subject: subject}
}

// Write adds one line to the record gathering. It always reports the whole
// line written. The line is copied: zerolog reuses its buffer once Write
// returns.
func (p *Publisher) Write(b []byte) (int, error) {
	line := bytes.TrimSuffix(b, []byte("\n"))
	if len(line) == 0 {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.writeFallback(b, line)
		return len(b), nil
	}
	if p.lines > 0 && len(p.record)+len(line) >= recordMaxBytes {
		p.publishLocked()
	}
	p.record = append(append(p.record, line...), '\n')
	p.lines++
	switch {
	case len(p.record) >= recordMaxBytes:
		p.publishLocked()
	case p.lines == 1:
		p.armLocked()
	}
	return len(b), nil
}

// armLocked starts the delay of a record that has just begun.
func (p *Publisher) armLocked() {
	if p.timer == nil {
		p.timer = time.AfterFunc(recordDelay, p.publishGathered)
		return
	}
	p.timer.Reset(recordDelay)
}

// publishGathered publishes the record gathering, if any.
func (p *Publisher) publishGathered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishLocked()
}

// publishLocked publishes the record gathering (without its last newline)
// and starts a new one. nc.Publish copies the data, so the buffer is
// reused.
func (p *Publisher) publishLocked() {
	if p.lines == 0 {
		return
	}
	if err := p.nc.Publish(p.subject, p.record[:len(p.record)-1]); err != nil {
		p.dropped.Add(uint64(p.lines))
	}
	p.record, p.lines = p.record[:0], 0
}

// writeFallback writes the line, newline-terminated, to the fallback.
func (p *Publisher) writeFallback(b, line []byte) {
	if p.fallback == nil {
		p.dropped.Add(1)
		return
	}
	if len(b) == len(line) { // no newline: add one, without touching b
		b = append(append(make([]byte, 0, len(line)+1), line...), '\n')
	}
	if _, err := p.fallback.Write(b); err != nil {
		p.dropped.Add(1)
	}
}

// Flush publishes the record gathering and waits until the server has
// received every line written so far. (The stream stores them a moment
// later.)
func (p *Publisher) Flush() error {
	p.publishGathered()
	if err := p.nc.FlushTimeout(publishFlushTimeout); err != nil {
		return fmt.Errorf("flush log publisher: %w", err)
	}
	return nil
}

// Stored waits until the stream that keeps the lines has stored every
// line written so far. Flush proves only that the server has read them;
// the stream stores them a moment later. Stored sends a barrier: a publish
// the stream refuses (it expects a last sequence no stream reaches), which
// the stream answers in order, after the lines before it.
func (p *Publisher) Stored(ctx context.Context) error {
	p.publishGathered()
	js, err := jetstream.New(p.nc)
	if err != nil {
		return fmt.Errorf("wait for stored log lines: %w", err)
	}
	_, err = js.Publish(ctx, p.subject, nil, jetstream.WithExpectLastSequence(math.MaxUint64),
		jetstream.WithRetryAttempts(0))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return nil // refused in turn: what came before is stored
	}
	if err == nil {
		err = errors.New("the barrier was stored")
	}
	return fmt.Errorf("wait for stored log lines: %w", err)
}

// Close stops publishing: every later Write goes to fallback instead (or is
// dropped if fallback is nil), so lines logged at the very end of a
// shutdown, after the NATS connection is gone, still reach a file. The
// first Close flushes what was published before; a later Close only
// replaces the fallback. Close does not close the connection.
func (p *Publisher) Close(fallback io.Writer) error {
	p.mu.Lock()
	first := !p.closed
	if first {
		p.publishLocked()
	}
	p.closed, p.fallback = true, fallback
	p.mu.Unlock()
	if !first {
		return nil
	}
	return p.Flush()
}

// Dropped is the number of lines that were lost: not published, and not
// written to a fallback.
func (p *Publisher) Dropped() uint64 { return p.dropped.Load() }
