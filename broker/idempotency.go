package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// IdempotencyStore keeps, for a window, which task each idempotency key
// made: a KV bucket whose entries age out with the window, written with
// the server's create-if-absent, so of any number of racing submits with
// one key exactly one claims it.
type IdempotencyStore struct {
	kv jetstream.KeyValue
}

// OpenIdempotency opens (creating if needed) the bucket with the window
// as its entries' age limit.
func OpenIdempotency(ctx context.Context, nc *nats.Conn, window time.Duration) (*IdempotencyStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: IdempotencyBucket,
		Description: "AgentCom idempotency keys: the task each key's first submit made", History: 1,
		TTL: window, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("create idempotency bucket: %w", err)
	}
	return &IdempotencyStore{kv: kv}, nil
}

// Claim returns the task id that key (of submitter scope) stands for:
// id when this call claimed it, else the id of the submit that did.
func (s *IdempotencyStore) Claim(ctx context.Context, scope, key, id string) (string, error) {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	k := hex.EncodeToString(sum[:])
	for range 3 { // an entry can age out between the create and the read
		_, err := s.kv.Create(ctx, k, []byte(id))
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", fmt.Errorf("claim idempotency key: %w", err)
		}
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read idempotency key: %w", err)
		}
		return string(e.Value()), nil
	}
	return "", errors.New("claim idempotency key: it kept ageing out")
}
