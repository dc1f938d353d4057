package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/domain"
)

// ReadOpts selects the events Read delivers.
type ReadOpts struct {
	// From is the first stream sequence to read; 0 and 1 both mean the start.
	From uint64
	// Until is the last sequence to read; 0 means the stream's last
	// sequence when Read starts.
	Until uint64
	// Subject filters events (for example one task's subject); "" reads all.
	Subject string
}

// ErrStop, returned by a Read callback, ends the read without an error.
var ErrStop = errors.New("stop reading")

// LastSeq returns the sequence of the newest event (0 when there is none).
func (s *EventStore) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read events stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Read calls fn for each selected event in stream order, with Seq set.
// It stops at opts.Until, at the end of the stream, on the first error from
// fn (returned), or when fn returns ErrStop.
func (s *EventStore) Read(ctx context.Context, opts ReadOpts, fn func(domain.Envelope) error) error {
	until := opts.Until
	if until == 0 {
		last, err := s.LastSeq(ctx)
		if err != nil {
			return err
		}
		until = last
	}
	from := max(opts.From, 1)
	if from > until {
		return nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, orderedConfig(from, opts.Subject))
	if err != nil {
		return fmt.Errorf("create event reader: %w", err)
	}
	if cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	defer it.Stop()
	return readLoop(ctx, it, until, fn)
}

func orderedConfig(from uint64, subject string) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	return cfg
}

func readLoop(ctx context.Context, it jetstream.MessagesContext, until uint64, fn func(domain.Envelope) error) error {
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read event metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > until {
			return nil
		}
		env, err := domain.DecodeEnvelope(msg.Data())
		if err != nil {
			return fmt.Errorf("read event %d: %w", seq, err)
		}
		env.Seq = seq
		if err := fn(env); errors.Is(err, ErrStop) {
			return nil
		} else if err != nil {
			return err
		}
		if seq == until || meta.NumPending == 0 {
			return nil
		}
	}
}
