package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scanIdle ends a scan that has waited this long for the next message.
const scanIdle = 2 * time.Second

// MessageStore keeps the agents' messages in a stream bounded by age and
// count (oldest dropped first), and each agent's mailbox cursor in a KV
// bucket.
type MessageStore struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	kv       jetstream.KeyValue
	channels jetstream.KeyValue
}

// OpenMessages opens (creating or updating) the stream and the bucket.
func OpenMessages(ctx context.Context, nc *nats.Conn, maxAge time.Duration, maxMsgs, maxBytes int64) (*MessageStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: MessagesStream,
		Description: "AgentCom messages between agents and operators", Subjects: []string{MessagesAll},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxAge: maxAge, MaxMsgs: maxMsgs, MaxBytes: maxBytes, Duplicates: DuplicateWindow, Replicas: 1})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", MessagesStream, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: MailboxesBucket,
		Description: "AgentCom mailbox cursors: the last message each agent acknowledged", History: 1,
		Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("create mailboxes bucket: %w", err)
	}
	channels, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ChannelsBucket,
		Description: "AgentCom channels: description and subscribers", History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("create channels bucket: %w", err)
	}
	return &MessageStore{js: js, stream: st, kv: kv, channels: channels}, nil
}

// Channel returns a channel's value and revision (nil and 0: none).
func (s *MessageStore) Channel(ctx context.Context, name string) ([]byte, uint64, error) {
	e, err := s.channels.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read channel %s: %w", name, err)
	}
	return e.Value(), e.Revision(), nil
}

// PutChannel writes a channel if it is still at rev (0: must not exist);
// ErrConflict when it raced another change.
func (s *MessageStore) PutChannel(ctx context.Context, name string, value []byte, rev uint64) error {
	var err error
	if rev == 0 {
		_, err = s.channels.Create(ctx, name, value)
	} else {
		_, err = s.channels.Update(ctx, name, value, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isConflict(err) {
		return fmt.Errorf("store channel %s: %w", name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store channel %s: %w", name, err)
	}
	return nil
}

// ChannelNames lists the channels, sorted.
func (s *MessageStore) ChannelNames(ctx context.Context) ([]string, error) {
	keys, err := s.channels.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []string{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	out := []string{}
	for k := range keys.Keys() {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// Publish stores one message on subject, once per id (a resend within the
// dedupe window is not stored twice), and returns its sequence.
func (s *MessageStore) Publish(ctx context.Context, subject, id string, data []byte) (uint64, error) {
	ack, err := s.js.Publish(ctx, subject, data, jetstream.WithMsgID(id))
	if err != nil {
		return 0, fmt.Errorf("store message %s: %w", id, err)
	}
	return ack.Sequence, nil
}

// Scan calls fn with every stored message on the filter subjects from
// sequence from on, oldest first, until fn says stop or none is left. It
// reads no further than the filters' last message when it starts, so it
// never waits for one that is not there.
func (s *MessageStore) Scan(ctx context.Context, filters []string, from uint64, fn func(seq uint64, data []byte) bool) error {
	end, err := s.lastOf(ctx, filters)
	if err != nil || end < max(from, 1) {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	c, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read messages: %w", err)
	}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(scanIdle))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read messages: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read message metadata: %w", err)
		}
		if !fn(meta.Sequence.Stream, m.Data()) || meta.NumPending == 0 || meta.Sequence.Stream >= end {
			return nil
		}
	}
}

// lastOf is the sequence of the last message on any of the filters (0:
// none): the stream's last for the wildcard, each subject's own else.
func (s *MessageStore) lastOf(ctx context.Context, filters []string) (uint64, error) {
	var last uint64
	for _, f := range filters {
		if f == MessagesAll {
			info, err := s.stream.Info(ctx)
			if err != nil {
				return 0, fmt.Errorf("read stream %s: %w", MessagesStream, err)
			}
			if info.State.Msgs > 0 {
				last = max(last, info.State.LastSeq)
			}
			continue
		}
		m, err := s.stream.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read messages on %s: %w", f, err)
		}
		last = max(last, m.Sequence)
	}
	return last, nil
}

// Cursor is the last sequence the agent acknowledged, and the key's revision.
func (s *MessageStore) Cursor(ctx context.Context, agentID string) (uint64, uint64, error) {
	e, err := s.kv.Get(ctx, agentID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read mailbox of %s: %w", agentID, err)
	}
	seq, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read mailbox of %s: %w", agentID, err)
	}
	return seq, e.Revision(), nil
}

// SetCursor moves the agent's cursor to seq if the key is still at rev (0:
// none yet); ErrConflict when another acknowledgement raced it.
func (s *MessageStore) SetCursor(ctx context.Context, agentID string, seq, rev uint64) error {
	var err error
	v := []byte(strconv.FormatUint(seq, 10))
	if rev == 0 {
		_, err = s.kv.Create(ctx, agentID, v)
	} else {
		_, err = s.kv.Update(ctx, agentID, v, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isConflict(err) {
		return fmt.Errorf("move mailbox of %s: %w", agentID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("move mailbox of %s: %w", agentID, err)
	}
	return nil
}
