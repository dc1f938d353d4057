package hub

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
)

// flight is a sent group on its way to the applier.
type flight struct {
	group   []decided
	sent    *broker.Pending
	atomic  bool
	started time.Time
}

// decided is one command with its events.
type decided struct {
	p      *pending
	envs   []domain.Envelope
	after  *domain.Task
	append broker.Append
}

// completion tells the decider which tasks are free again, and which
// commands to decide once more.
type completion struct {
	tasks []string
	retry []*pending
}

// decider gathers, decides and sends groups until quit, then finishes
// what it has taken.
func (s *Service) decider() {
	for {
		var first *pending
		if !s.runnable() {
			select {
			case first = <-s.in:
			case c := <-s.completed:
				s.release(c)
				continue
			case <-s.quit:
				s.finishUp()
				return
			}
		}
		s.dispatch(s.gather(first))
	}
}

// finishUp takes what callers already handed in, and returns when nothing
// is held or in flight.
func (s *Service) finishUp() {
	for {
		select {
		case p := <-s.in:
			s.dispatch(s.gather(p))
			continue
		default:
		}
		if s.runnable() {
			s.dispatch(s.gather(nil))
			continue
		}
		if len(s.inflight) == 0 && len(s.held) == 0 {
			return
		}
		s.release(<-s.completed)
	}
}

// runnable reports whether a held command's task is free.
func (s *Service) runnable() bool {
	for _, p := range s.held {
		if !s.inflight[p.cmd.TaskID()] {
			return true
		}
	}
	return false
}

func (s *Service) release(c *completion) {
	for _, id := range c.tasks {
		delete(s.inflight, id)
	}
	s.held = append(c.retry, s.held...) // a retried command came first
}

// gather starts a group with the held commands, then first, then every
// command already waiting, up to maxBatch.
func (s *Service) gather(first *pending) []*pending {
	n := min(len(s.held), s.maxBatch)
	group := append([]*pending(nil), s.held[:n]...)
	s.held = s.held[n:]
	if first != nil {
		group = append(group, first)
	}
	for len(group) < s.maxBatch {
		select {
		case p := <-s.in:
			group = append(group, p)
		default:
			return group
		}
	}
	return group
}

// dispatch decides a group (one command per free task; the rest are held)
// and sends it to the store and then to the applier.
func (s *Service) dispatch(group []*pending) {
	ready := make([]decided, 0, len(group))
	for _, p := range group {
		id := p.cmd.TaskID()
		if s.inflight[id] {
			s.held = append(s.held, p)
			continue
		}
		if d, ok := s.decide(p); ok {
			s.inflight[id] = true
			ready = append(ready, d)
		}
	}
	if len(ready) == 0 {
		return
	}
	f := &flight{group: ready, started: time.Now()}
	if f.atomic = s.syncAlways && len(ready) >= s.minAtomic; f.atomic {
		f.sent = s.store.PublishAtomic(appendsOf(ready))
	} else {
		f.sent = s.store.Publish(appendsOf(ready))
	}
	// Keep taking completions while the applier is busy: it may be waiting
	// to hand one over before it can take this flight.
	for {
		select {
		case s.flights <- f:
			return
		case c := <-s.completed:
			s.release(c)
		}
	}
}

// decide runs one command against the task's durable state; a rejected
// command is answered at once.
func (s *Service) decide(p *pending) (decided, bool) {
	id := p.cmd.TaskID()
	t, seq, _ := s.tasks.Get(id)
	now := s.now().UTC()
	events, err := p.cmd.Decide(t, now)
	if err != nil {
		answer(p, nil, err)
		return decided{}, false
	}
	envs := envelopes(p.ctx, id, now, events)
	for _, env := range envs {
		t = domain.Evolve(t, env)
	}
	return decided{p: p, envs: envs, after: t,
		append: broker.Append{Subject: broker.TaskEvents(id), ExpectedSeq: seq, Events: envs}}, true
}

func envelopes(ctx context.Context, aggregate string, now time.Time, events []domain.Event) []domain.Envelope {
	reqID := logsink.RequestID(ctx)
	envs := make([]domain.Envelope, len(events))
	for i, e := range events {
		envs[i] = domain.Envelope{ID: newEventID(), Type: e.EventType(), Version: e.SchemaVersion(),
			Time: now, Aggregate: aggregate, RequestID: reqID, Data: e}
	}
	return envs
}

func appendsOf(group []decided) []broker.Append {
	out := make([]broker.Append, len(group))
	for i, d := range group {
		out[i] = d.append
	}
	return out
}

func answer(p *pending, t *domain.Task, err error) {
	p.result <- outcome{task: t, err: err}
}
