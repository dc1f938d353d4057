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

// Publisher is an io.Writer that publishes every log line on one NATS
// subject, where the LOGS stream stores it until the Sink writes it to the
// log file. Each Write is one line, as zerolog writes them: one JSON object
// and a newline. The newline is not published.
//
// Publishing is core NATS, fire and forget: a Write never waits for the
// server and never fails. A line that cannot be published (connection
// closed, reconnect buffer full, line over the server's payload limit) is
// counted in Dropped. After Close, lines go to the fallback writer instead.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	nc      *nats.Conn
	subject string

	mu       sync.RWMutex // Write holds it shared, Close exclusively
	closed   bool
	fallback io.Writer
	fbMu     sync.Mutex // serialises writes to fallback

	dropped atomic.Uint64
}

// NewPublisher returns a Publisher on subject, such as broker.LogHub(node)
// or broker.LogAgent(agentID).
func NewPublisher(nc *nats.Conn, subject string) *Publisher {
	return &Publisher{nc: nc, subject: subject}
}

// Write publishes one line. It always reports the whole line written.
//
// zerolog reuses its buffer once Write returns; that is safe here because
// nc.Publish copies the payload into the connection's buffer (or its
// reconnect buffer) before it returns, so b is never retained.
func (p *Publisher) Write(b []byte) (int, error) {
	line := bytes.TrimSuffix(b, []byte("\n"))
	if len(line) == 0 {
		return len(b), nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.writeFallback(b, line)
		return len(b), nil
	}
	if err := p.nc.Publish(p.subject, line); err != nil {
		p.dropped.Add(1)
	}
	return len(b), nil
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
	p.fbMu.Lock()
	defer p.fbMu.Unlock()
	if _, err := p.fallback.Write(b); err != nil {
		p.dropped.Add(1)
	}
}

// Flush waits until the server has received every line published so far.
// (The stream stores them a moment later.)
func (p *Publisher) Flush() error {
	if err := p.nc.FlushTimeout(publishFlushTimeout); err != nil {
		return fmt.Errorf("flush log publisher: %w", err)
	}
	return nil
}

// Stored waits until the stream that keeps the lines has stored every
// line published so far. Flush proves only that the server has read them;
// the stream stores them a moment later. Stored sends a barrier: a publish
// the stream refuses (it expects a last sequence no stream reaches), which
// the stream answers in order, after the lines before it.
func (p *Publisher) Stored(ctx context.Context) error {
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
