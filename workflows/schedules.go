package workflows

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/writer"
)

// Schedule errors the API answers with their own status.
var (
	ErrScheduleNotFound = errors.New("schedule not found")
	ErrScheduleExists   = errors.New("schedule exists")
)

// LateGrace is how late a tick may be seen and still count as on time; a
// tick later than that was missed (the hub was down) and runs by the
// schedule's catch_up.
const LateGrace = 30 * time.Second

// DefaultPoll is how often the schedules look at the clock.
const DefaultPoll = time.Second

// Decode reads a task template as a submit body.
type Decode func(body []byte, now time.Time) (domain.SubmitTask, error)

// Schedules keeps the periodic schedules, built from their events, and
// submits each tick's task once: its id is derived from the schedule and
// the tick, so a restart never submits a tick twice.
type Schedules struct {
	p      Params
	log    logsink.Logger
	decode Decode
	goals  *Goals
	poll   time.Duration

	mu    sync.Mutex
	items map[string]*scheduled
	write sync.Mutex
	quit  chan struct{}
	done  chan struct{}
	polls atomic.Uint64 // looks at the clock so far
}

// Polls is how many times the schedules have looked at the clock.
func (s *Schedules) Polls() uint64 { return s.polls.Load() }

// scheduled is one schedule with its parsed spec and its last tick run.
type scheduled struct {
	domain.Schedule
	spec cron.Schedule // nil for an interval
	last time.Time
}

// next is the first tick after t.
func (s *scheduled) next(t time.Time) time.Time {
	if s.spec != nil {
		return s.spec.Next(t.UTC())
	}
	every := time.Duration(s.Every)
	return s.CreatedAt.Add((t.Sub(s.CreatedAt)/every + 1) * every)
}

// NewSchedules returns the schedules (poll 0: DefaultPoll); Load reads them.
func NewSchedules(p Params, decode Decode, goals *Goals, poll time.Duration) *Schedules {
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Schedules{p: p, log: p.Log.Module("workflows"), decode: decode, goals: goals,
		poll: cmp.Or(poll, DefaultPoll), items: map[string]*scheduled{}, quit: make(chan struct{}), done: make(chan struct{})}
}

// Load reads every schedule's events and the last tick each has run (its
// newest task in memory), then starts the clock.
func (s *Schedules) Load(ctx context.Context) error {
	err := s.p.Store.Read(ctx, broker.ReadOpts{Subject: broker.ScheduleEventsAll}, func(env domain.Envelope) error {
		s.apply(env)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read schedules: %w", err)
	}
	if len(s.items) > 0 {
		s.lastTicks(s.p.Tasks)
	}
	go s.run()
	return nil
}

// lastTicks notes each schedule's newest tick among the tasks in memory.
func (s *Schedules) lastTicks(tasks *projections.Tasks) {
	all := append(tasks.List(projections.Filter{}), tasks.DeadLetter()...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range all {
		if t.Extras == nil || t.Tick == nil {
			continue
		}
		if e := s.items[t.Schedule]; e != nil && t.Tick.After(e.last) {
			e.last = *t.Tick
		}
	}
}

// apply folds one event into the schedules.
func (s *Schedules) apply(env domain.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev *domain.Schedule
	if e := s.items[env.Aggregate]; e != nil {
		prev = &e.Schedule
	}
	next := domain.EvolveSchedule(prev, env)
	if next == nil {
		return
	}
	e := &scheduled{Schedule: *next, last: next.CreatedAt}
	if old := s.items[env.Aggregate]; old != nil && old.CreatedAt.Equal(next.CreatedAt) {
		e.last = old.last
	}
	if next.Cron != "" {
		e.spec, _ = cron.ParseStandard(next.Cron) // checked when it was created
	}
	s.items[env.Aggregate] = e
}

// Stop ends the clock.
func (s *Schedules) Stop() {
	select {
	case <-s.quit:
		return
	default:
	}
	close(s.quit)
	<-s.done
}

func (s *Schedules) run() {
	defer close(s.done)
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.tick(s.p.Now().UTC())
			s.polls.Add(1)
		}
	}
}

// tick runs what is due at now: per schedule, its newest due tick (on
// time, or missed and caught up once); older missed ones are not run.
func (s *Schedules) tick(now time.Time) {
	s.mu.Lock()
	due := map[string]time.Time{}
	for name, e := range s.items {
		if tick, ok := newestDue(e, now); !e.Deleted && ok {
			due[name] = tick
		}
	}
	s.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(due)) {
		s.fire(name, due[name], now)
	}
}

// newestDue is the newest tick of e after its last one and not after now.
func newestDue(e *scheduled, now time.Time) (time.Time, bool) {
	tick := e.next(e.last)
	if tick.IsZero() || tick.After(now) { // zero: a spec that never fires again
		return time.Time{}, false
	}
	if e.spec == nil { // an interval: the newest tick not after now, at once
		every := time.Duration(e.Every)
		return e.CreatedAt.Add(now.Sub(e.CreatedAt) / every * every), true
	}
	for range 1_000_000 { // cron: a spec firing every minute, for two years down
		n := e.next(tick)
		if n.IsZero() || n.After(now) {
			break
		}
		tick = n
	}
	return tick, true
}

// fire submits the task of one tick, unless it was missed and the
// schedule skips missed ticks.
// A tick whose submit failed is tried again at the next poll (its task
// id makes a repeat harmless).
func (s *Schedules) fire(name string, tick, now time.Time) {
	s.mu.Lock()
	e := *s.items[name]
	s.mu.Unlock()
	rid := "req-" + domain.TickTaskID(name, tick)
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), rid), writer.AppendTimeout)
	defer cancel()
	if now.Sub(tick) > LateGrace && e.CatchUp == domain.CatchUpSkip {
		s.log.Ctx(ctx).Info().Str("schedule", name).Time("tick", tick).Msg("missed tick skipped")
		s.ran(name, e.CreatedAt, tick)
		return
	}
	t, err := s.submit(ctx, e.Schedule, tick, now)
	if err != nil {
		s.log.Ctx(ctx).Warning().Err(err).Str("schedule", name).Time("tick", tick).Msg("tick not submitted")
		return
	}
	s.ran(name, e.CreatedAt, tick)
	s.log.Ctx(ctx).Info().Str("schedule", name).Time("tick", tick).Str("task_id", t.ID).Msg("tick submitted")
}

// ran notes a schedule's newest tick done, unless the schedule was
// deleted or made again meanwhile.
func (s *Schedules) ran(name string, created, tick time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.items[name]; e != nil && e.CreatedAt.Equal(created) && tick.After(e.last) {
		e.last = tick
	}
}

// submit stores one tick's task: the template, under the tick's id.
func (s *Schedules) submit(ctx context.Context, sc domain.Schedule, tick, now time.Time) (*domain.Task, error) {
	cmd, err := s.decode(sc.Task, now)
	if err != nil {
		return nil, fmt.Errorf("decode the task of schedule %s: %w", sc.Name, err)
	}
	cmd.ID, cmd.SubmittedBy, cmd.RequestID = domain.TickTaskID(sc.Name, tick), sc.CreatedBy, logsink.RequestID(ctx)
	cmd.Flow.Schedule, cmd.Flow.Tick = sc.Name, &tick
	if g := cmd.Flow.GoalID; g != "" && s.goals != nil {
		if err := s.goals.Join(ctx, g, sc.CreatedBy); err != nil {
			return nil, err
		}
	}
	return s.p.Writer.Execute(ctx, cmd)
}

// Create adds a schedule from its request, by who.
func (s *Schedules) Create(ctx context.Context, req ops.ScheduleRequest, by string) (ops.Schedule, error) {
	ev, err := s.check(req)
	if err != nil {
		return ops.Schedule{}, err
	}
	ev.By = by
	s.write.Lock()
	defer s.write.Unlock()
	var seq uint64
	if e, ok := s.get(req.Name); ok {
		if !e.Deleted {
			return ops.Schedule{}, fmt.Errorf("schedule %s: %w", req.Name, ErrScheduleExists)
		}
		seq = e.Seq
	}
	if err := s.record(ctx, req.Name, seq, ev); err != nil {
		return ops.Schedule{}, err
	}
	s.log.Ctx(ctx).Info().Str("schedule", req.Name).Str("by", by).Msg("schedule added")
	return s.Get(req.Name)
}

// check reads a schedule request, every problem named by its field.
func (s *Schedules) check(req ops.ScheduleRequest) (domain.ScheduleCreated, error) {
	v := &domain.ValidationError{}
	if !domain.ValidTaskID(req.Name) || len(req.Name) > domain.MaxScheduleName {
		v.Add("name", "invalid", fmt.Sprintf("name must be letters, digits, '_' and '-', at most %d", domain.MaxScheduleName))
	}
	ev := domain.ScheduleCreated{Cron: req.Cron, CatchUp: req.CatchUp, Task: req.Task}
	switch {
	case (req.Cron == "") == (req.Every == ""):
		v.Add("cron", "required", "give exactly one of cron and every")
	case req.Cron != "":
		if spec, err := cron.ParseStandard(req.Cron); err != nil {
			v.Add("cron", "invalid", "cron: "+err.Error())
		} else if spec.Next(s.p.Now().UTC()).IsZero() {
			v.Add("cron", "invalid", "cron: "+req.Cron+" never fires (a date that does not exist?)")
		}
	default:
		d, err := time.ParseDuration(req.Every)
		if err != nil || d < time.Second {
			v.Add("every", "invalid", `every must be a duration of at least 1s, such as "5m"`)
		}
		ev.Every = domain.Duration(d)
	}
	switch req.CatchUp {
	case "":
		ev.CatchUp = domain.CatchUpOnce
	case domain.CatchUpOnce, domain.CatchUpSkip:
	default:
		v.Add("catch_up", "invalid", "catch_up must be once or skip")
	}
	s.checkTemplate(v, req.Task)
	return ev, v.Err()
}

// checkTemplate reads the task template as a submit would.
func (s *Schedules) checkTemplate(v *domain.ValidationError, task json.RawMessage) {
	cmd, err := s.decode(task, s.p.Now())
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			v.Add("task."+f.Field, f.Error, f.Detail)
		}
		return
	}
	if len(cmd.Flow.DependsOn) > 0 || cmd.Flow.IdempotencyKey != "" {
		v.Add("task", "invalid", "a schedule's task takes no depends_on and no idempotency_key (each tick is its own)")
	}
}

// Delete ends a schedule.
func (s *Schedules) Delete(ctx context.Context, name, by string) (ops.Schedule, error) {
	s.write.Lock()
	defer s.write.Unlock()
	e, ok := s.get(name)
	if !ok || e.Deleted {
		return ops.Schedule{}, fmt.Errorf("schedule %s: %w", name, ErrScheduleNotFound)
	}
	if err := s.record(ctx, name, e.Seq, domain.ScheduleDeleted{By: by}); err != nil {
		return ops.Schedule{}, err
	}
	s.log.Ctx(ctx).Info().Str("schedule", name).Str("by", by).Msg("schedule deleted")
	out := s.view(e)
	out.Deleted, out.NextTick = true, nil
	return out, nil
}

func (s *Schedules) get(name string) (scheduled, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[name]; ok {
		return *e, true
	}
	return scheduled{}, false
}

// Get is one schedule as it stands.
func (s *Schedules) Get(name string) (ops.Schedule, error) {
	e, ok := s.get(name)
	if !ok || e.Deleted {
		return ops.Schedule{}, fmt.Errorf("schedule %s: %w", name, ErrScheduleNotFound)
	}
	return s.view(e), nil
}

// List is every schedule not deleted, by name.
func (s *Schedules) List() []ops.Schedule {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.items))
	s.mu.Unlock()
	out := []ops.Schedule{}
	for _, n := range names {
		if v, err := s.Get(n); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func (s *Schedules) view(e scheduled) ops.Schedule {
	v := ops.Schedule{Name: e.Name, Cron: e.Cron, CatchUp: e.CatchUp, Task: e.Task, CreatedBy: e.CreatedBy,
		CreatedAt: e.CreatedAt}
	if e.Every > 0 {
		v.Every = time.Duration(e.Every).String()
	}
	if e.last.After(e.CreatedAt) {
		last := e.last
		v.LastTick = &last
	}
	if next := e.next(e.last); !next.IsZero() {
		v.NextTick = &next
	}
	return v
}

// record appends one event to the schedule's subject, expecting seq
// there, and applies it. The write lock is held.
func (s *Schedules) record(ctx context.Context, name string, seq uint64, ev domain.Event) error {
	env := writer.Envelopes(ctx, name, s.p.Now().UTC(), []domain.Event{ev})[0]
	seqs, err := s.p.Store.AppendAtomic(ctx, []broker.Append{{Subject: broker.ScheduleEvents(name), ExpectedSeq: seq,
		Events: []domain.Envelope{env}}})
	if err != nil {
		return fmt.Errorf("store schedule %s: %w", name, err)
	}
	env.Seq = seqs[0]
	s.apply(env)
	return nil
}
