package workflows

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/writer"
)

// Goal errors the API answers with their own status.
var (
	ErrGoalNotFound  = errors.New("goal not found")
	ErrGoalExists    = errors.New("goal exists")
	ErrGoalCancelled = errors.New("goal is cancelled")
)

// Params are what the goals and schedules work with.
type Params struct {
	Store     *broker.EventStore
	Writer    *writer.Service
	Tasks     *projections.Tasks
	Log       logsink.Logger
	Telemetry *telemetry.Emitter
	Now       func() time.Time
}

// Goals keeps every goal, built from its events on its own subject, and
// records goal.completed and goal.failed as its tasks settle.
type Goals struct {
	p   Params
	log logsink.Logger

	mu    sync.Mutex // guards goals; write orders appends
	goals map[string]*domain.Goal
	write sync.Mutex
	work  *queue // the goals to settle
}

// NewGoals returns the goals; Load reads them.
func NewGoals(p Params) *Goals {
	if p.Now == nil {
		p.Now = time.Now
	}
	g := &Goals{p: p, log: p.Log.Module("workflows"), goals: map[string]*domain.Goal{}}
	g.work = newQueue(g.settle, g.open)
	return g
}

// Load reads every goal's events, then settles the goals whose tasks
// settled while the hub was down.
func (g *Goals) Load(ctx context.Context) error {
	err := g.p.Store.Read(ctx, broker.ReadOpts{Subject: broker.GoalEventsAll}, func(env domain.Envelope) error {
		g.goals[env.Aggregate] = domain.EvolveGoal(g.goals[env.Aggregate], env)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read goals: %w", err)
	}
	for id := range g.goals {
		g.work.mark(id)
	}
	g.work.start()
	return nil
}

// open lists the open goals' ids.
func (g *Goals) open() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []string
	for id, goal := range g.goals {
		if goal.Status == domain.GoalStatusOpen {
			ids = append(ids, id)
		}
	}
	return ids
}

// Stop ends the settling loop.
func (g *Goals) Stop() { g.work.Stop() }

// Applied notes the goals whose tasks changed status in a group.
func (g *Goals) Applied(a writer.Applied) {
	for i, env := range a.Events {
		if t := a.Tasks[i]; t != nil && t.Goal() != "" && env.IsTask() {
			g.work.mark(t.Goal())
		}
	}
}

// Get is one goal as it stands (its status as its tasks say, unless it
// was cancelled).
func (g *Goals) Get(id string) (ops.Goal, error) {
	goal, ok := g.goal(id)
	if !ok {
		return ops.Goal{}, fmt.Errorf("goal %s: %w", id, ErrGoalNotFound)
	}
	v := ops.Goal{Goal: goal, Counts: map[domain.Status]int{}, Tasks: []ops.GoalTask{}}
	statuses := g.p.Tasks.GoalTasks(id)
	for _, tid := range slices.Sorted(maps.Keys(statuses)) {
		v.Counts[statuses[tid]]++
		n := ops.GoalTask{ID: tid, Status: statuses[tid]}
		if t, _, ok := g.p.Tasks.Peek(tid); ok {
			n.Description, n.DependsOn = t.Description, t.Deps()
		}
		v.Tasks = append(v.Tasks, n)
	}
	if v.Status != domain.GoalStatusCancelled {
		v.Status = domain.Settle(v.Counts)
	}
	return v, nil
}

// List is every goal with its counts, newest first.
func (g *Goals) List() []ops.Goal {
	g.mu.Lock()
	ids := slices.Collect(maps.Keys(g.goals))
	g.mu.Unlock()
	out := make([]ops.Goal, 0, len(ids))
	for _, id := range ids {
		if v, err := g.Get(id); err == nil {
			v.Tasks = nil // the list counts; one goal shows its tasks
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b ops.Goal) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

func (g *Goals) goal(id string) (domain.Goal, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if goal, ok := g.goals[id]; ok {
		return *goal, true
	}
	return domain.Goal{}, false
}

// Create starts a goal; ErrGoalExists when the id is taken.
func (g *Goals) Create(ctx context.Context, id, title, description, by string) (domain.Goal, error) {
	if err := domain.CheckGoal(id, title, description); err != nil {
		return domain.Goal{}, err
	}
	if id == "" {
		id = "goal-" + writer.NewTaskID()[len("task-"):]
	}
	g.write.Lock()
	defer g.write.Unlock()
	if _, ok := g.goal(id); ok {
		return domain.Goal{}, fmt.Errorf("goal %s: %w", id, ErrGoalExists)
	}
	if err := g.record(ctx, id, domain.GoalCreated{Title: title, Description: description, By: by}); err != nil {
		return domain.Goal{}, err
	}
	goal, _ := g.goal(id)
	g.log.Ctx(ctx).Info().Str("goal_id", id).Str("by", by).Msg("goal created")
	return goal, nil
}

// Join readies a goal for a new task: a goal used for the first time is
// created (titled by its id), a settled one reopened; a cancelled one
// takes no more tasks.
func (g *Goals) Join(ctx context.Context, id, by string) error {
	goal, ok := g.goal(id)
	switch {
	case !ok:
		_, err := g.Create(ctx, id, id, "", by)
		if errors.Is(err, ErrGoalExists) {
			return nil // a racing submit created it
		}
		return err
	case goal.Status == domain.GoalStatusCancelled:
		return fmt.Errorf("goal %s: %w", id, ErrGoalCancelled)
	case goal.Status != domain.GoalStatusOpen:
		g.write.Lock()
		defer g.write.Unlock()
		switch goal, _ := g.goal(id); goal.Status { // again, under the lock: a cancel may have won
		case domain.GoalStatusCancelled:
			return fmt.Errorf("goal %s: %w", id, ErrGoalCancelled)
		case domain.GoalStatusOpen:
			return nil
		}
		return g.record(ctx, id, domain.GoalReopened{})
	}
	return nil
}

// Cancel cancels a goal's open tasks and then the goal.
func (g *Goals) Cancel(ctx context.Context, id, by, reason string) (ops.Goal, error) {
	g.write.Lock()
	defer g.write.Unlock()
	goal, ok := g.goal(id)
	if !ok {
		return ops.Goal{}, fmt.Errorf("goal %s: %w", id, ErrGoalNotFound)
	}
	if goal.Status == domain.GoalStatusCancelled {
		return ops.Goal{}, fmt.Errorf("goal %s: %w", id, ErrGoalCancelled)
	}
	for tid, st := range g.p.Tasks.GoalTasks(id) {
		if st.Final() {
			continue
		}
		_, err := g.p.Writer.Execute(ctx, domain.CancelTask{ID: tid, By: by, Reason: "goal " + id + " cancelled"})
		if err != nil && !errors.Is(err, domain.ErrInvalidState) { // finished meanwhile
			return ops.Goal{}, fmt.Errorf("cancel task %s of goal %s: %w", tid, id, err)
		}
	}
	if err := g.record(ctx, id, domain.GoalCancelled{By: by, Reason: reason}); err != nil {
		return ops.Goal{}, err
	}
	g.log.Ctx(ctx).Notice().Str("goal_id", id).Str("by", by).Msg("goal cancelled")
	return g.Get(id)
}

// settle records goal.completed or goal.failed when an open goal's tasks
// have all settled.
func (g *Goals) settle(id string) {
	g.write.Lock() // a cancel in flight ends first: it is not a failure
	defer g.write.Unlock()
	goal, ok := g.goal(id)
	if !ok || goal.Status != domain.GoalStatusOpen {
		return
	}
	counts := g.p.Tasks.GoalCounts(id)
	var ev domain.Event
	switch domain.Settle(counts) {
	case domain.GoalStatusCompleted:
		ev = domain.GoalCompleted{GoalSettled: domain.GoalSettled{Counts: counts}}
	case domain.GoalStatusFailed:
		ev = domain.GoalFailed{GoalSettled: domain.GoalSettled{Counts: counts}}
	default:
		return
	}
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), logsink.NewRequestID()), writer.AppendTimeout)
	defer cancel()
	if err := g.record(ctx, id, ev); err != nil {
		g.log.Ctx(ctx).Warning().Err(err).Str("goal_id", id).Msg("goal not settled")
		return
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	g.log.Ctx(ctx).Info().Str("goal_id", id).Str("event", ev.EventType()).Int("tasks", total).Msg("goal settled")
	g.p.Telemetry.Emit(ev.EventType(), map[string]float64{"tasks": float64(total),
		"failed": float64(counts[domain.StatusDeadLetter] + counts[domain.StatusCancelled])},
		map[string]any{"goal_id": id, "request_id": logsink.RequestID(ctx)})
}

// record appends one event to the goal's subject, expecting the last
// sequence seen there, and applies it. The write lock is held.
func (g *Goals) record(ctx context.Context, id string, ev domain.Event) error {
	prev, _ := g.goal(id)
	env := writer.Envelopes(ctx, id, g.p.Now().UTC(), []domain.Event{ev})[0]
	seqs, err := g.p.Store.AppendAtomic(ctx, []broker.Append{{Subject: broker.GoalEvents(id), ExpectedSeq: prev.Seq,
		Events: []domain.Envelope{env}}})
	if err != nil {
		return fmt.Errorf("store goal %s: %w", id, err)
	}
	env.Seq = seqs[0]
	g.mu.Lock()
	defer g.mu.Unlock()
	g.goals[id] = domain.EvolveGoal(g.goals[id], env)
	return nil
}
