package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/agentcom/agentcom/domain"
)

// ErrConflict means another append changed an aggregate after the
// caller read it: the expected last sequence no longer holds. Reload the
// aggregate and decide again.
var ErrConflict = errors.New("append conflict")

// Append is one command's events for one aggregate subject.
//
// ExpectedSeq is the stream sequence of the last event on Subject that the
// caller decided against (0 when the subject must be empty). When several
// Appends in one call share a subject, only the first one's ExpectedSeq is
// checked; the rest follow it inside the same atomic batch.
type Append struct {
	Subject     string
	ExpectedSeq uint64
	Events      []domain.Envelope
	// Rollup makes the append's (single) event replace every earlier event
	// on its subject, atomically: compaction.
	Rollup bool
}

// Header names used on event messages. jetstream names the others
// (MsgIDHeader, ExpectedLastSubjSeqHeader, MsgRollup), not these of the
// atomic batch protocol.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// errCodeBatchDuplicate is the JetStream error of a batch with a message
// id already stored, which jetstream does not name. With its wrong-last-
// sequence errors it is what the append path treats as a conflict.
// (10158, "a message with this id is still being stored", is not one: it
// is retried.)
const errCodeBatchDuplicate = 10201

// appendAttempts bounds retries of an append whose answer was lost.
const appendAttempts = 3

// defaultTimeout applies to store calls whose ctx has no deadline.
const defaultTimeout = 10 * time.Second

// fullCheckTimeout bounds the look, on a full store, for an append stored
// after all, so that a refusal stays immediate.
const fullCheckTimeout = 500 * time.Millisecond

// EventStore appends domain events to the EVENTS stream and reads them back.
type EventStore struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	noRollup bool
	full     *fullState
}

// OpenEventStore creates or updates the EVENTS stream and returns a store
// on it. Safe to call at every start.
func OpenEventStore(ctx context.Context, nc *nats.Conn) (*EventStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	st, err := js.CreateOrUpdateStream(ctx, eventsStreamConfig())
	if err != nil && strings.Contains(err.Error(), "deny purge") {
		// A store made before compaction existed denies purges for good:
		// it works as before, without compaction.
		st, err = js.Stream(ctx, EventsStream)
		if err == nil {
			return &EventStore{nc: nc, js: js, stream: st, noRollup: true, full: newFullState()}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create events stream: %w", err)
	}
	return &EventStore{nc: nc, js: js, stream: st, full: newFullState()}, nil
}

// ErrNoCompaction means the store predates compaction (it denies purges).
var ErrNoCompaction = errors.New("this event store was created before compaction existed and denies purges")

// CanCompact reports whether rollups (compaction) are possible.
func (s *EventStore) CanCompact() error {
	if s.noRollup {
		return ErrNoCompaction
	}
	return nil
}

// Info returns the events stream's state.
func (s *EventStore) Info(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read events stream info: %w", err)
	}
	return info, nil
}

// ExistingEventStore opens the EVENTS stream without creating it, for
// offline readers such as replay.
func ExistingEventStore(ctx context.Context, nc *nats.Conn) (*EventStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("open events stream: %w", err)
	}
	return &EventStore{nc: nc, js: js, stream: st, full: newFullState()}, nil
}

// DuplicateWindow is how long the server remembers an event id, so that a
// resend of an append whose answer was lost stores nothing twice. Resends
// come within two append timeouts (30 s); every id remembered costs the
// server memory, so the window is no longer than that needs: a hub at
// 10,000 events a second keeps 600,000 ids, not the 6 million of the
// 10 minutes it had.
const DuplicateWindow = time.Minute

// eventsStreamConfig keeps every event until compaction summarises it: no
// limits, no deletes of single events; a full store refuses new events
// rather than dropping old ones. Atomic batches carry multi-event commands
// and group commits.
func eventsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "AgentCom domain events: the source of truth",
		Subjects:    []string{EventsAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Duplicates:  DuplicateWindow,
		DenyDelete:  true,
		// Compaction replaces a finished task's events with one summary by
		// a subject rollup, which needs purges allowed. Only the hub may
		// publish on event subjects.
		AllowRollup:        true,
		AllowAtomicPublish: true,
		Replicas:           1,
	}
}

// AppendAtomic writes the events of all appends as one atomic batch: all
// are stored or none, and a server that syncs always syncs once for the
// whole batch. It returns each event's stream sequence, in order. A retry
// after a lost answer does not store anything twice (every event's id is
// its Nats-Msg-Id). A failed expected-sequence check is ErrConflict; a
// full store is ErrStoreFull, at once.
func (s *EventStore) AppendAtomic(ctx context.Context, appends []Append) ([]uint64, error) {
	msgs, err := buildMessages(appends)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	if err := s.Full(); err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	ctx, stop := s.untilFull(ctx)
	defer stop()
	var last error
	for attempt := 0; attempt < appendAttempts; attempt++ {
		first, err := s.publish(ctx, msgs)
		if err == nil {
			return sequences(first, len(msgs)), nil
		}
		if first, ok := s.resolve(ctx, msgs, err); ok {
			return sequences(first, len(msgs)), nil
		}
		if isConflict(err) {
			return nil, fmt.Errorf("append events: %w: %w", ErrConflict, err)
		}
		if ferr := fullError(ctx, err); ferr != nil {
			return s.refuseFull(msgs, ferr)
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("append events: %w", last)
}

func buildMessages(appends []Append) ([]*nats.Msg, error) {
	var msgs []*nats.Msg
	seen := map[string]bool{}
	for _, a := range appends {
		if len(a.Events) == 0 {
			return nil, fmt.Errorf("append to %s: no events", a.Subject)
		}
		for i, env := range a.Events {
			data, err := domain.EncodeEnvelope(env)
			if err != nil {
				return nil, err
			}
			m := nats.NewMsg(a.Subject)
			m.Data = data
			m.Header.Set(jetstream.MsgIDHeader, env.ID)
			if i == 0 && !seen[a.Subject] {
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(a.ExpectedSeq, 10))
			}
			if a.Rollup {
				m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			}
			seen[a.Subject] = true
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

// publish sends one message as a plain publish, several as an atomic
// batch, and returns the sequence of the first one.
func (s *EventStore) publish(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 1 {
		ack, err := s.request(ctx, msgs[0])
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	}
	last, err := s.sendBatch(msgs)
	if err != nil {
		return 0, err
	}
	ack, err := s.request(ctx, last)
	if err != nil {
		return 0, err
	}
	return ack.Sequence - uint64(len(msgs)) + 1, nil
}

// sendBatch marks msgs as one atomic batch and publishes all but the last,
// the commit, which it returns for the caller to publish and await.
func (s *EventStore) sendBatch(msgs []*nats.Msg) (*nats.Msg, error) {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(hdrBatchCommit, "1")
	for _, m := range msgs[:len(msgs)-1] {
		if err := s.nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("publish batch message: %w", err)
		}
	}
	return last, nil
}

// request publishes one message and waits for the stream's ack. A lost
// answer is the append path's to retry, not the client's.
func (s *EventStore) request(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithRetryAttempts(0))
	if err != nil {
		return nil, fmt.Errorf("publish event: %w", err)
	}
	return ack, nil
}

// resolve decides whether a failed append was in fact stored by an earlier
// attempt whose answer was lost. On a single server the expected-sequence
// check runs before the duplicate check, so such a retry comes back as
// "wrong last sequence" (or, for a batch, "duplicate message"): the append
// is ours if the last message on its subject carries our last event's id.
func (s *EventStore) resolve(ctx context.Context, msgs []*nats.Msg, err error) (uint64, bool) {
	if !isConflict(err) {
		return 0, false
	}
	return s.lastIsOurs(ctx, msgs)
}

// refuseFull answers an append that met a full store: ErrStoreFull, unless
// the stream shows the append stored after all (its ack was on the way
// when the store was marked full).
func (s *EventStore) refuseFull(msgs []*nats.Msg, full error) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fullCheckTimeout)
	defer cancel()
	if first, ok := s.lastIsOurs(ctx, msgs); ok {
		return sequences(first, len(msgs)), nil
	}
	return nil, fmt.Errorf("append events: %w", full)
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant,
		errCodeBatchDuplicate:
		return true
	}
	return false
}

func sequences(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultTimeout)
}
