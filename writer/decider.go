package writer

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
)

// flight is a sent group on its way to the applier.
type flight struct {
	group  []decided
	sent   *broker.Pending
	atomic bool
}

// decided is one command with its events (append.Events) and the state
// of its aggregate after them.
type decided struct {
	p      *pending
	after  state
	append broker.Append
}

// completion tells the decider which aggregates are free again, and which
// commands to decide once more.
type completion struct {
	keys  []key
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

// runnable reports whether a held command's aggregates are all free.
func (s *Service) runnable() bool {
	for _, p := range s.held {
		if s.free(p) {
			return true
		}
	}
	return false
}

func (s *Service) free(p *pending) bool {
	for _, k := range p.keys.list() {
		if s.inflight[k] {
			return false
		}
	}
	return true
}

func (s *Service) release(c *completion) {
	for _, k := range c.keys {
		delete(s.inflight, k)
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
		// The keys are read now: a task's holder changes only with a
		// command on the task, and none is in flight if its key is free.
		if p.keys = p.cmd.keys(s); !s.free(p) {
			s.held = append(s.held, p)
			continue
		}
		if d, ok := s.decide(p); ok {
			for _, k := range p.keys.list() {
				s.inflight[k] = true
			}
			ready = append(ready, d)
		}
	}
	if len(ready) == 0 {
		return
	}
	f := &flight{group: ready}
	if f.atomic = s.syncAlways && len(ready) >= s.minAtomic && !anyRollup(ready); f.atomic {
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

// decide runs one command against durable state; a rejected command is
// answered at once.
func (s *Service) decide(p *pending) (decided, bool) {
	d, err := p.cmd.decide(s, p.ctx, s.now().UTC(), p.conflicts > 0)
	if err != nil {
		answer(p, state{}, err)
		return decided{}, false
	}
	if len(d.append.Events) == 0 { // nothing to change (an idempotent repeat)
		answer(p, d.after, nil)
		return decided{}, false
	}
	d.p = p
	return d, true
}

// Envelopes wraps a command's events for the store: ids, the time, the
// aggregate, the request id of ctx.
func Envelopes(ctx context.Context, aggregate string, now time.Time, events []domain.Event) []domain.Envelope {
	reqID := logsink.RequestID(ctx)
	envs := make([]domain.Envelope, len(events))
	for i, e := range events {
		envs[i] = domain.Envelope{ID: NewEventID(), Type: e.EventType(), Version: e.SchemaVersion(),
			Time: now, Aggregate: aggregate, RequestID: reqID, Data: e}
	}
	return envs
}

// anyRollup reports a compaction in the group: rollups go pipelined, never
// inside an atomic batch.
func anyRollup(group []decided) bool {
	for _, d := range group {
		if d.append.Rollup {
			return true
		}
	}
	return false
}

func appendsOf(group []decided) []broker.Append {
	out := make([]broker.Append, len(group))
	for i, d := range group {
		out[i] = d.append
	}
	return out
}

func answer(p *pending, after state, err error) {
	p.result <- outcome{after: after, err: err}
}
