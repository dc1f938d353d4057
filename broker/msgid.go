package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
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
