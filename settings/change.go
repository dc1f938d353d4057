package settings

import (
	"context"
	"fmt"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/writer"
)

// Set changes a setting: checked with the others in force, stored as a
// config.changed event, then applied. An unknown key wraps ErrUnknownKey,
// a refused value ErrInvalid; a store that does not take the event
// leaves the setting as it was.
func (s *Settings) Set(ctx context.Context, key, value, by string) (ops.Setting, error) {
	return s.change(ctx, key, by, func(st config.Setting, cur config.Hub) (config.Hub, domain.ConfigChanged, error) {
		next, err := st.Apply(cur, value)
		if err != nil {
			return cur, domain.ConfigChanged{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return next, domain.ConfigChanged{Value: st.Get(next)}, nil
	})
}

// Reset returns a setting to the configuration file's value, with the
// same checks and record as Set.
func (s *Settings) Reset(ctx context.Context, key, by string) (ops.Setting, error) {
	return s.change(ctx, key, by, func(st config.Setting, cur config.Hub) (config.Hub, domain.ConfigChanged, error) {
		next, err := st.Apply(cur, st.Get(s.file))
		if err != nil {
			return cur, domain.ConfigChanged{}, fmt.Errorf("%w: the file's value does not hold with the others in force: %w",
				ErrInvalid, err)
		}
		return next, domain.ConfigChanged{Value: st.Get(next), Reset: true}, nil
	})
}

// decide computes the configuration after a change and its event.
type decide func(config.Setting, config.Hub) (config.Hub, domain.ConfigChanged, error)

func (s *Settings) change(ctx context.Context, key, by string, d decide) (ops.Setting, error) {
	st, err := find(key)
	if err != nil {
		return ops.Setting{}, err
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	cur := s.Current()
	next, ev, err := d(st, cur)
	if err != nil {
		return ops.Setting{}, err
	}
	ev.Key, ev.From, ev.By = key, st.Get(cur), by
	env, err := s.record(ctx, ev)
	if err != nil {
		return ops.Setting{}, err
	}
	watch := s.commit(key, next, env, ev)
	for _, fn := range watch {
		fn(next)
	}
	s.log.Ctx(ctx).Notice().Str("key", key).Str("from", ev.From).Str("to", ev.Value).Bool("reset", ev.Reset).
		Str("by", by).Msg("setting changed")
	s.tel.Emit("config.change", nil, map[string]any{"key": key, "from": ev.From, "to": ev.Value, "reset": ev.Reset,
		"by": by, "request_id": logsink.RequestID(ctx)})
	return s.Get(key)
}

// record stores the change on the key's subject, expecting the last
// sequence this hub saw there.
func (s *Settings) record(ctx context.Context, ev domain.ConfigChanged) (domain.Envelope, error) {
	s.mu.Lock()
	expected := s.seqs[ev.Key]
	s.mu.Unlock()
	env := domain.Envelope{ID: writer.NewEventID(), Type: ev.EventType(), Version: ev.SchemaVersion(),
		Time: s.now().UTC(), Aggregate: "config", RequestID: logsink.RequestID(ctx), Data: ev}
	seqs, err := s.store.AppendAtomic(ctx, []broker.Append{{Subject: broker.ConfigEvents(ev.Key), ExpectedSeq: expected,
		Events: []domain.Envelope{env}}})
	if err != nil {
		return env, fmt.Errorf("record setting %s: %w", ev.Key, err)
	}
	env.Seq = seqs[0]
	return env, nil
}

// commit makes next the configuration in force and returns the watchers
// to tell.
func (s *Settings) commit(key string, next config.Hub, env domain.Envelope, ev domain.ConfigChanged) []func(config.Hub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur, s.seqs[key] = next, env.Seq
	if ev.Reset {
		delete(s.changes, key)
	} else {
		s.changes[key] = change{value: ev.Value, at: env.Time, by: ev.By}
	}
	return append([]func(config.Hub){}, s.watch...)
}
