package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReservationStore keeps each project's file reservations under one key of
// a KV bucket. A write names the revision it read (the server's own
// compare-and-set: a write that raced another is ErrConflict) and carries
// a TTL, the latest expiry among what it holds, so a project nobody
// renews leaves the bucket by itself.
type ReservationStore struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// OpenReservations opens (creating if needed) the bucket, with per-key TTLs.
func OpenReservations(ctx context.Context, nc *nats.Conn) (*ReservationStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ReservationsBucket,
		Description: "AgentCom file reservations, one key per project", History: 1, Storage: jetstream.FileStorage,
		LimitMarkerTTL: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("create reservations bucket: %w", err)
	}
	return &ReservationStore{js: js, kv: kv}, nil
}

// Get returns a project's value and revision (0 and nil: none).
func (s *ReservationStore) Get(ctx context.Context, project string) ([]byte, uint64, error) {
	e, err := s.kv.Get(ctx, project)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read reservations of %s: %w", project, err)
	}
	return e.Value(), e.Revision(), nil
}

// Put writes a project's value if its revision is still rev (0: the key
// must have no value), to expire after ttl; ErrConflict when it raced.
func (s *ReservationStore) Put(ctx context.Context, project string, value []byte, rev uint64, ttl time.Duration) error {
	msg := nats.NewMsg(fmt.Sprintf(ReservationKeyT, project))
	msg.Data = value
	_, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev),
		jetstream.WithMsgTTL(max(ttl, time.Second)))
	if isConflict(err) {
		return fmt.Errorf("store reservations of %s: %w", project, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store reservations of %s: %w", project, err)
	}
	return nil
}

// Projects lists the projects that hold reservations, sorted.
func (s *ReservationStore) Projects(ctx context.Context) ([]string, error) {
	keys, err := s.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []string{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("list reservation projects: %w", err)
	}
	var out []string
	for k := range keys.Keys() {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}
