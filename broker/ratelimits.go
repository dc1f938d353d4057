package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/limits"
)

// RateLimitStore keeps the operator's rate-limit overrides and exempt
// names in a KV bucket (override.<name>, exempt.<name>), so that they
// survive restarts, and applies each change to the limiter.
type RateLimitStore struct {
	kv  jetstream.KeyValue
	lim *limits.Limiter
}

// OpenRateLimits opens (creating if needed) the bucket and loads what it
// holds into lim.
func OpenRateLimits(ctx context.Context, nc *nats.Conn, lim *limits.Limiter) (*RateLimitStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RateLimitsBucket,
		Description: "AgentCom rate-limit overrides and exempt names", History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("create rate-limit bucket: %w", err)
	}
	s := &RateLimitStore{kv: kv, lim: lim}
	return s, s.load(ctx)
}

func (s *RateLimitStore) load(ctx context.Context) error {
	keys, err := s.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("list rate limits: %w", err)
	}
	for k := range keys.Keys() {
		kind, name, _ := strings.Cut(k, ".")
		if kind == "exempt" {
			s.lim.SetExempt(name, true)
			continue
		}
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("read rate limit %s: %w", k, err)
		}
		var o limits.Override
		if err := json.Unmarshal(e.Value(), &o); err != nil {
			return fmt.Errorf("decode rate limit %s: %w", k, err)
		}
		s.lim.SetOverride(name, o)
	}
	return nil
}

// SetOverride stores and applies name's override.
func (s *RateLimitStore) SetOverride(ctx context.Context, name string, o limits.Override) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode rate limit: %w", err)
	}
	if _, err := s.kv.Put(ctx, "override."+name, b); err != nil {
		return fmt.Errorf("store rate limit of %s: %w", name, err)
	}
	s.lim.SetOverride(name, o)
	return nil
}

// ErrNoRateLimit means the name has no override, or is not exempt.
var ErrNoRateLimit = errors.New("no such rate-limit entry")

// ClearOverride removes name's override.
func (s *RateLimitStore) ClearOverride(ctx context.Context, name string) error {
	if !s.lim.ClearOverride(name) {
		return fmt.Errorf("clear rate limit of %s: %w", name, ErrNoRateLimit)
	}
	if err := s.kv.Delete(ctx, "override."+name); err != nil {
		return fmt.Errorf("clear rate limit of %s: %w", name, err)
	}
	return nil
}

// SetExempt puts name on the exempt list or takes it off.
func (s *RateLimitStore) SetExempt(ctx context.Context, name string, on bool) error {
	if !on {
		if !s.lim.SetExempt(name, false) {
			return fmt.Errorf("unexempt %s: %w", name, ErrNoRateLimit)
		}
		if err := s.kv.Delete(ctx, "exempt."+name); err != nil {
			return fmt.Errorf("unexempt %s: %w", name, err)
		}
		return nil
	}
	if _, err := s.kv.Put(ctx, "exempt."+name, []byte("true")); err != nil {
		return fmt.Errorf("exempt %s: %w", name, err)
	}
	s.lim.SetExempt(name, true)
	return nil
}
