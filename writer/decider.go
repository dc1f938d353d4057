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

// completion tells the decider which aggregates are free again, which
// agents' assignments landed (their slot reservations end), and which
// commands to decide once more.
type completion struct {
	keys     []key
	assigned []domain.AssignTask
	retry    []*pending
}

// decider gathers, decides and sends groups until quit, then finishes
// what it has taken.
func (s *Service) decider() {
	for {
		var first []*pending
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
		case ps := <-s.in:
			s.dispatch(s.gather(ps))
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

// runnable reports whether a held command's aggregates are all free, as
// dispatch would find them (a command held behind one that wants its
// agent alone waits too, or the decider would spin on it).
func (s *Service) runnable() bool {
	var waiting map[key]bool
	for _, p := range s.held[:min(len(s.held), s.maxBatch)] { // what gather takes
		if s.free(p, waiting) {
			return true
		}
		waiting = s.wants(p, waiting)
	}
	return false
}

// free reports whether p may go now: none of its keys is in flight alone,
// and a key it takes alone has nothing in flight. A shared key that a
// command waiting before p wants alone (waiting) is not free either, so
// an agent's own command is not starved by its tasks' stream of reports.
func (s *Service) free(p *pending, waiting map[key]bool) bool {
	for _, k := range p.keys.list() {
		n := s.inflight[k.lock()]
		if n < 0 || (!k.shared && n > 0) || (k.shared && waiting[k.lock()]) {
			return false
		}
	}
	return true
}

// hold marks p's keys in flight.
func (s *Service) hold(p *pending) {
	for _, k := range p.keys.list() {
		if k.shared {
			s.inflight[k.lock()]++
		} else {
			s.inflight[k.lock()] = -1
		}
	}
}

func (s *Service) release(c *completion) {
	for _, k := range c.keys {
		if l := k.lock(); k.shared && s.inflight[l] > 1 {
			s.inflight[l]--
		} else {
			delete(s.inflight, l)
		}
	}
	for _, as := range c.assigned {
		if delete(s.reserved[as.AgentID], as.ID); len(s.reserved[as.AgentID]) == 0 {
			delete(s.reserved, as.AgentID)
		}
	}
	s.held = append(c.retry, s.held...) // a retried command came first
}

// gather starts a group with the held commands, then first, then every
// command already waiting, up to maxBatch; what of first does not fit is
// held for the next group, in order.
func (s *Service) gather(first []*pending) []*pending {
	n := min(len(s.held), s.maxBatch)
	group := append([]*pending(nil), s.held[:n]...)
	s.held = s.held[n:]
	group = s.fill(group, first)
	for len(group) < s.maxBatch {
		select {
		case ps := <-s.in:
			group = s.fill(group, ps)
		default:
			return group
		}
	}
	return group
}

// fill adds ps to group up to maxBatch and holds the rest, in order.
func (s *Service) fill(group, ps []*pending) []*pending {
	room := min(max(s.maxBatch-len(group), 0), len(ps))
	s.held = append(s.held, ps[room:]...)
	return append(group, ps[:room]...)
}

// dispatch decides a group (one command per free task; the rest are held)
// and sends it to the store and then to the applier.
func (s *Service) dispatch(group []*pending) {
	ready := make([]decided, 0, len(group))
	var waiting map[key]bool
	for _, p := range group {
		// The keys are read now: a task's holder changes only with a
		// command on the task, and none is in flight if its key is free.
		if p.keys = p.cmd.keys(s); !s.free(p, waiting) {
			s.held = append(s.held, p)
			waiting = s.wants(p, waiting)
			continue
		}
		if d, ok := s.decide(p); ok {
			s.hold(p)
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

// reserve takes a slot of agentID for an assignment of task in flight.
func (s *Service) reserve(agentID, task string) {
	if s.reserved[agentID] == nil {
		s.reserved[agentID] = map[string]bool{}
	}
	s.reserved[agentID][task] = true
}

// unseen is how many of the agent's assignments in flight its state does
// not show yet: a landed one is in a.Tasks before its completion frees
// the reservation, and must not count twice.
func (s *Service) unseen(a *domain.Agent, agentID string) int {
	n := 0
	for task := range s.reserved[agentID] {
		if a == nil {
			n++
		} else if _, held := a.Holding(task); !held {
			n++
		}
	}
	return n
}

// wants adds the keys a held command takes alone to waiting.
func (s *Service) wants(p *pending, waiting map[key]bool) map[key]bool {
	for _, k := range p.keys.list() {
		if !k.shared {
			if waiting == nil {
				waiting = map[key]bool{}
			}
			waiting[k.lock()] = true
		}
	}
	return waiting
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
