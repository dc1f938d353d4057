// Package settings holds the hub's run-time settings: the keys of
// config.Settings an operator changes while the hub runs (PUT
// /api/config/{key}). Each change is a config.changed event on the key's
// own subject of the event stream, so replay and backups keep it; at
// start the last event of each key is laid over the configuration file,
// and every change is handed at once to the parts that use it.
package settings

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/telemetry"
)

// ErrUnknownKey means a key that does not change at run time.
var ErrUnknownKey = errors.New("unknown setting")

// ErrInvalid wraps a value the setting refuses.
var ErrInvalid = errors.New("invalid setting")

// change is a setting changed at run time.
type change struct {
	value string
	at    time.Time
	by    string
}

// Params are what Settings work with.
type Params struct {
	Store *broker.EventStore
	// Config is the configuration as the file, the environment and the
	// flags gave it.
	Config    config.Hub
	Log       logsink.Logger
	Telemetry *telemetry.Emitter
	Now       func() time.Time
}

// Settings are the configuration in force: the file's, with the changes
// made at run time laid over it.
type Settings struct {
	store *broker.EventStore
	log   logsink.Logger
	tel   *telemetry.Emitter
	now   func() time.Time
	file  config.Hub

	setMu   sync.Mutex // one change at a time, so each knows its subject's last sequence
	mu      sync.Mutex
	cur     config.Hub
	changes map[string]change
	seqs    map[string]uint64
	watch   []func(config.Hub)
}

// New returns the settings of the file's configuration; Load lays the
// stored changes over it.
func New(p Params) *Settings {
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Settings{store: p.Store, log: p.Log.Module("hub"), tel: p.Telemetry, now: p.Now, file: p.Config,
		cur: p.Config, changes: map[string]change{}, seqs: map[string]uint64{}}
}

// Current is the configuration in force.
func (s *Settings) Current() config.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Watch calls fn with the configuration in force after every change.
func (s *Settings) Watch(fn func(config.Hub)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch = append(s.watch, fn)
}

// Load reads the last change of every setting and lays them over the
// file's values. A change that cannot be read, or stored values that do
// not hold together with the file's (the file changed since), are not
// applied, and the error log says why: the file's values stand until an
// operator sets them again.
func (s *Settings) Load(ctx context.Context) {
	cur, changes := s.file, map[string]change{}
	for _, st := range s.stored(ctx) {
		env, ok, err := s.store.LastEvent(ctx, broker.ConfigEvents(st.Key))
		if err != nil {
			s.log.Error().Err(err).Str("key", st.Key).Msg("stored setting not read: the file's value stands")
			continue
		}
		c, isChange := env.Data.(domain.ConfigChanged)
		if !ok || !isChange {
			continue
		}
		s.seqs[st.Key] = env.Seq
		if c.Reset {
			continue
		}
		next, err := st.Parse(cur, c.Value)
		if err != nil {
			s.log.Error().Err(err).Str("key", st.Key).Msg("stored setting not applied")
			continue
		}
		cur, changes[st.Key] = next, change{value: c.Value, at: env.Time, by: c.By}
	}
	if err := config.CheckSettings(cur); err != nil {
		s.log.Error().Err(err).Msg("run-time settings not applied: they do not hold with the configuration file; its values stand")
		cur, changes = s.file, map[string]change{}
	}
	s.mu.Lock()
	s.cur, s.changes = cur, changes
	s.mu.Unlock()
}

// stored are the settings the stream holds changes of (the agents' own
// budgets among them), or every fixed one when the stream cannot say.
func (s *Settings) stored(ctx context.Context) []config.Setting {
	subjects, err := s.store.Subjects(ctx, broker.ConfigEventsAll)
	if err != nil {
		s.log.Error().Err(err).Msg("run-time settings not listed: reading each")
		return config.Settings
	}
	var out []config.Setting
	for _, subject := range subjects {
		key := strings.TrimPrefix(subject, broker.ConfigEventsPrefix)
		if st, ok := config.FindSetting(key); ok {
			out = append(out, st)
		} else {
			s.log.Warning().Str("key", key).Msg("stored setting unknown to this build: ignored")
		}
	}
	return out
}

// List returns every setting with its value in force, then the agents'
// own budgets.
func (s *Settings) List() ops.Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := append(slices.Clone(config.Settings), config.BudgetSettings(s.cur, s.file)...)
	out := ops.Settings{Settings: make([]ops.Setting, 0, len(all))}
	for _, st := range all {
		out.Settings = append(out.Settings, s.viewLocked(st))
	}
	return out
}

// Get returns one setting; an unknown key wraps ErrUnknownKey.
func (s *Settings) Get(key string) (ops.Setting, error) {
	st, err := find(key)
	if err != nil {
		return ops.Setting{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewLocked(st), nil
}

func (s *Settings) viewLocked(st config.Setting) ops.Setting {
	v := ops.Setting{Key: st.Key, Value: st.Get(s.cur), FileValue: st.Get(s.file), Source: "file", Summary: st.Summary}
	if c, ok := s.changes[st.Key]; ok {
		at := c.at
		v.Source, v.ChangedAt, v.ChangedBy = "run-time", &at, c.by
	}
	return v
}

func find(key string) (config.Setting, error) {
	st, ok := config.FindSetting(key)
	if !ok {
		return st, fmt.Errorf("%w %q: the settings that change at run time are %s", ErrUnknownKey, key,
			strings.Join(config.SettingKeys(), ", "))
	}
	return st, nil
}
