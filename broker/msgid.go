package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/domain"
)

// ErrNoMessage means the events stream holds no message at a sequence: it
// was never written, was removed by a rollup, or was lost.
var ErrNoMessage = errors.New("no message at this sequence")

// MsgID returns the Nats-Msg-Id header (the event id) of the message at
// seq. A missing message is an error wrapping ErrNoMessage; a message
// without the header gives "".
func (s *EventStore) MsgID(ctx context.Context, seq uint64) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	msg, err := s.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", fmt.Errorf("read message %d: %w", seq, ErrNoMessage)
	}
	if err != nil {
		return "", fmt.Errorf("read message %d: %w", seq, err)
	}
	return msg.Header.Get(jetstream.MsgIDHeader), nil
}

// SubjectLastSeq returns the sequence of the last message on subject, 0
// when it has none.
func (s *EventStore) SubjectLastSeq(ctx context.Context, subject string) (uint64, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	msg, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read last message on %s: %w", subject, err)
	}
	return msg.Sequence, nil
}

// LastEvent returns the last event on subject and its sequence; ok is
// false when the subject has none.
func (s *EventStore) LastEvent(ctx context.Context, subject string) (env domain.Envelope, ok bool, err error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	msg, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return domain.Envelope{}, false, nil
	}
	if err != nil {
		return domain.Envelope{}, false, fmt.Errorf("read last message on %s: %w", subject, err)
	}
	if env, err = domain.DecodeEnvelope(msg.Data); err != nil {
		return domain.Envelope{}, false, fmt.Errorf("read last message on %s: %w", subject, err)
	}
	env.Seq = msg.Sequence
	return env, true, nil
}

// Subjects lists the subjects under filter that hold a message, sorted.
func (s *EventStore) Subjects(ctx context.Context, filter string) ([]string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("list subjects %s: %w", filter, err)
	}
	return slices.Sorted(maps.Keys(info.State.Subjects)), nil
}
