package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AppendResult is the outcome of one Append.
type AppendResult struct {
	// Seqs are the stream sequences of the append's events, in order.
	Seqs []uint64
	// Err is nil, an error wrapping ErrConflict, or another failure.
	Err error
}

// Pending is a set of appends sent to the server whose acks are not read
// yet. Everything sent on one store is stored in the order it was sent.
type Pending struct {
	s       *EventStore
	units   []*unit
	results []AppendResult
}

// unit is what the server acknowledges at once: one append, or a whole
// atomic batch of appends.
type unit struct {
	appends []Append
	first   int // index of appends[0] in Pending.results
	msgs    []*nats.Msg
	future  jetstream.PubAckFuture
	err     error
}

// Publish sends each append as its own atomic unit (a plain publish for one
// event, an atomic batch for several) without waiting for any ack, so the
// appends of a group are in flight together. Every append must name a
// distinct subject: a later one on the same subject could not state its
// expected sequence. Use it when the server does not sync every write.
func (s *EventStore) Publish(appends []Append) *Pending {
	p := &Pending{s: s, results: make([]AppendResult, len(appends))}
	for i, a := range appends {
		p.send(&unit{appends: []Append{a}, first: i})
	}
	return p
}

// PublishAtomic sends all appends as one atomic batch, without waiting:
// all are stored or none, and a server that syncs always syncs once.
func (s *EventStore) PublishAtomic(appends []Append) *Pending {
	p := &Pending{s: s, results: make([]AppendResult, len(appends))}
	p.send(&unit{appends: appends})
	return p
}

// Append publishes each append as its own unit and waits for all of them.
func (s *EventStore) Append(ctx context.Context, appends []Append) []AppendResult {
	return s.Publish(appends).Wait(ctx)
}

func (p *Pending) send(u *unit) {
	p.units = append(p.units, u)
	if u.msgs, u.err = buildMessages(u.appends); u.err != nil {
		return
	}
	if u.err = p.s.Full(); u.err != nil {
		return
	}
	last := u.msgs[0]
	if len(u.msgs) > 1 {
		if last, u.err = p.s.sendBatch(u.msgs); u.err != nil {
			return
		}
	}
	u.future, u.err = p.s.js.PublishMsgAsync(last)
}

// Wait reads every ack and returns one result per append, in order. A
// unit whose ack is a conflict is checked against the stream (the events
// may be ours from an earlier attempt); one that failed otherwise is sent
// again, carefully, with AppendAtomic.
func (p *Pending) Wait(ctx context.Context) []AppendResult {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	ctx, stop := p.s.untilFull(ctx)
	defer stop()
	for _, u := range p.units {
		seqs, err := p.s.await(ctx, u)
		p.settle(u, seqs, err)
	}
	return p.results
}

// await returns the unit's sequences, or its error. An ack that has
// arrived is taken even if ctx has ended; checking and retrying after a
// failure get a fresh deadline of their own, but end when ctx is
// cancelled (a shutdown). A full store is not retried.
func (s *EventStore) await(ctx context.Context, u *unit) ([]uint64, error) {
	err := u.err
	if err == nil {
		var ack *jetstream.PubAck
		if ack, err = wait(ctx, u.future); err == nil {
			return sequences(ack.Sequence-uint64(len(u.msgs))+1, len(u.msgs)), nil
		}
	}
	if u.err != nil && errors.Is(u.err, ErrStoreFull) { // refused before it was sent
		return nil, fmt.Errorf("append events: %w", u.err)
	}
	if ferr := fullError(ctx, err); ferr != nil {
		return s.refuseFull(u.msgs, ferr)
	}
	rctx, cancel := freshTimeout(ctx, defaultTimeout)
	defer cancel()
	if first, ok := s.resolve(rctx, u.msgs, err); ok {
		return sequences(first, len(u.msgs)), nil
	}
	if isConflict(err) {
		return nil, fmt.Errorf("append events: %w: %w", ErrConflict, err)
	}
	return s.AppendAtomic(rctx, u.appends)
}

func wait(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	default:
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("await ack: %w", context.Cause(ctx))
	}
}

// freshTimeout is a context with a deadline of its own, d from now, that
// ends early only when parent is cancelled (not when its deadline passes).
func freshTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	stop := context.AfterFunc(parent, func() {
		if !errors.Is(parent.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return ctx, func() { stop(); cancel() }
}

// settle hands a unit's sequences (or error) out to its appends.
func (p *Pending) settle(u *unit, seqs []uint64, err error) {
	for i, a := range u.appends {
		r := &p.results[u.first+i]
		if err != nil {
			r.Err = err
			continue
		}
		r.Seqs, seqs = seqs[:len(a.Events)], seqs[len(a.Events):]
	}
}
