package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrStoreFull means the event store cannot take writes now: its volume
// is (nearly) full, or the server met a write error. Nothing of the
// refused append was stored (unless it says it cannot tell). It passes
// once space returns.
var ErrStoreFull = errors.New("the event store is full")

// JetStream errors that mean the server's storage limit is reached: it
// answers them at once, without storing.
const (
	errCodeInsufficientResources = 10023
	errCodeStorageExceeded       = 10047
)

// fullState is the store's full flag: the reason while full, and a
// channel closed when it became full, so waits for acks end at once.
type fullState struct {
	mu     sync.Mutex
	reason error
	ch     chan struct{}
}

func newFullState() *fullState { return &fullState{ch: make(chan struct{})} }

// MarkFull refuses every later append with ErrStoreFull and ends the waits
// for acks in flight. It reports whether the store was writable before.
func (s *EventStore) MarkFull(reason string) bool {
	f := s.full
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason != nil {
		return false
	}
	f.reason = fmt.Errorf("%w: %s", ErrStoreFull, reason)
	close(f.ch)
	return true
}

// ClearFull takes appends again. It reports whether the store was full.
func (s *EventStore) ClearFull() bool {
	f := s.full
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == nil {
		return false
	}
	f.reason, f.ch = nil, make(chan struct{})
	return true
}

// Full is the reason the store refuses appends (wrapping ErrStoreFull),
// or nil.
func (s *EventStore) Full() error {
	s.full.mu.Lock()
	defer s.full.mu.Unlock()
	return s.full.reason
}

// fullSignal is closed once the store is marked full.
func (s *EventStore) fullSignal() <-chan struct{} {
	s.full.mu.Lock()
	defer s.full.mu.Unlock()
	return s.full.ch
}

// untilFull is ctx, cancelled with the full reason as its cause when the
// store is marked full.
func (s *EventStore) untilFull(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	sig := s.fullSignal()
	go func() {
		select {
		case <-sig:
			cancel(s.Full())
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// fullError is err as ErrStoreFull when it means the store is full: the
// server's storage limit, or ctx ended because the store was marked full.
func fullError(ctx context.Context, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == errCodeInsufficientResources || apiErr.ErrorCode == errCodeStorageExceeded) {
		return fmt.Errorf("%w: %w", ErrStoreFull, err)
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrStoreFull) {
		return cause
	}
	return nil
}

// lastIsOurs reports whether the last message on the subject of msgs'
// last one is that message (by its id), and then the first's sequence.
func (s *EventStore) lastIsOurs(ctx context.Context, msgs []*nats.Msg) (uint64, bool) {
	last := msgs[len(msgs)-1]
	stored, err := s.stream.GetLastMsgForSubject(ctx, last.Subject)
	if err != nil || stored.Header.Get(jetstream.MsgIDHeader) != last.Header.Get(jetstream.MsgIDHeader) {
		return 0, false
	}
	return stored.Sequence - uint64(len(msgs)) + 1, true
}

// StoreFault is why the server cannot store now: JetStream is off, or a
// stream met a write error (the server keeps refusing that stream's
// writes, without answering them, until JetStream starts again). nil
// when the server is sound.
func (s *Server) StoreFault() error {
	if !s.ns.JetStreamEnabled() {
		return errors.New("jetstream is disabled")
	}
	if h := s.ns.Healthz(&server.HealthzOptions{}); h.Status != "ok" {
		return fmt.Errorf("jetstream unhealthy: %s", h.Error)
	}
	return nil
}

// RestartJetStream stops JetStream and starts it again on the same store:
// every stream is opened afresh from disk, which clears write errors.
// Acknowledged messages were on disk before their acks, so none is lost.
func (s *Server) RestartJetStream() error {
	if s.ns.JetStreamEnabled() {
		if err := s.ns.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop jetstream: %w", err)
		}
	}
	cfg := s.jsConfig
	if err := s.ns.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("start jetstream: %w", err)
	}
	return nil
}
