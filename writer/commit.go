package writer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
)

// AppendTimeout bounds the wait for one group's acks.
const AppendTimeout = 15 * time.Second

// applier reads each flight's acks in send order, applies what was stored
// and answers the callers.
func (s *Service) applier() {
	for f := range s.flights {
		s.land(f)
	}
}

// land settles one flight and tells the decider its tasks are free.
func (s *Service) land(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), AppendTimeout)
	defer cancel()
	results := f.sent.Wait(ctx)
	if f.atomic && results[0].Err != nil {
		// Send the same events again (same ids, so nothing can be stored
		// twice), each command on its own, to find the one that failed.
		s.log.Warning().Err(results[0].Err).Int("commands", len(f.group)).Msg("atomic group append failed, sending its commands alone")
		results = s.store.Append(ctx, appendsOf(f.group))
	}
	stored, c, catchUp := s.settle(f.group, results)
	s.apply(stored, catchUp)
	s.completed <- c
}

// settle sets the sequences of stored events and decides what happens to
// each other command: after a conflict it is decided once more (the
// projection catches up with the stream first); after any other failure
// its caller learns that the outcome is unknown.
func (s *Service) settle(group []decided, results []broker.AppendResult) ([]decided, *completion, bool) {
	c := &completion{}
	var stored []decided
	catchUp := false
	for i, r := range results {
		d := group[i]
		c.keys = append(c.keys, d.p.keys.list()...)
		if as, ok := assignment(d.p); ok {
			c.assigned = append(c.assigned, as)
		}
		switch {
		case r.Err == nil:
			for j := range d.append.Events {
				d.append.Events[j].Seq = r.Seqs[j]
			}
			stored = append(stored, d)
		case errors.Is(r.Err, broker.ErrConflict) && d.p.conflicts == 0:
			s.log.Warning().Err(r.Err).Str("aggregate", d.p.keys.all[0].String()).Msg("append conflict, deciding again")
			d.p.conflicts++
			catchUp = true
			c.retry = append(c.retry, d.p)
		case errors.Is(r.Err, broker.ErrConflict):
			answer(d.p, state{}, r.Err)
		case errors.Is(r.Err, broker.ErrStoreFull):
			// The store looked: not stored. (Had it been, the next group's
			// gap in the sequences brings it in. A catch-up now could fail
			// while JetStream restarts, which would stop the service.)
			answer(d.p, state{}, r.Err)
		default:
			catchUp = true // it may have been stored after all
			answer(d.p, state{}, fmt.Errorf("%w: %w", ErrUnknownOutcome, r.Err))
		}
	}
	return stored, c, catchUp
}

// apply applies stored events in stream order and answers their callers.
// When other events may lie between (a conflict, an unclear failure, a
// gap in the sequences), it reads the stream instead, which brings ours in
// too. An event that cannot be applied stops the service taking commands.
func (s *Service) apply(group []decided, catchUp bool) {
	var all []domain.Envelope
	for _, d := range group {
		all = append(all, d.append.Events...)
	}
	slices.SortFunc(all, func(a, b domain.Envelope) int { return cmp.Compare(a.Seq, b.Seq) })
	last := s.views.LastSeq()
	all = slices.DeleteFunc(all, func(e domain.Envelope) bool { return e.Seq <= last })
	var err error
	if catchUp || !contiguous(last, all) {
		ctx, cancel := context.WithTimeout(context.Background(), AppendTimeout)
		defer cancel()
		err = s.CatchUp(ctx)
	} else {
		err = s.views.Apply(all...)
	}
	if err != nil {
		s.breakWith(err)
	}
	if len(group) > 0 {
		s.commits.Add(1)
		s.commands.Add(uint64(len(group)))
	}
	for _, d := range group {
		s.logEvents(d)
		answer(d.p, d.after, nil) // stored, so done, even if not yet applied
	}
	// After the answers: telemetry and scheduling triggers are not on the
	// callers' path. The projections do not move until the next group.
	// (A catch-up may have applied others' events: all can be empty.)
	if fn := s.onApplied.Load(); fn != nil {
		(*fn)(s.applied(group, all))
	}
}

// applied is the group as OnApplied sees it: each event with its
// aggregate's state as decided (one command per aggregate in a group, so
// that is the state after the group), and the queue depth now.
func (s *Service) applied(group []decided, all []domain.Envelope) Applied {
	after := make(map[string]state, len(group))
	for _, d := range group {
		after[d.append.Events[0].Aggregate] = d.after
	}
	a := Applied{Events: all, Tasks: make([]*domain.Task, len(all)), Agents: make([]*domain.Agent, len(all)),
		QueueDepth: s.views.Tasks.QueueDepth()}
	for i, env := range all {
		st := after[env.Aggregate]
		a.Tasks[i], a.Agents[i] = st.task, st.agent
	}
	return a
}

// assignment returns p's command if it is an assignment.
func assignment(p *pending) (domain.AssignTask, bool) {
	tc, ok := p.cmd.(taskCommand)
	if !ok {
		return domain.AssignTask{}, false
	}
	as, ok := tc.Command.(domain.AssignTask)
	return as, ok
}

func contiguous(last uint64, envs []domain.Envelope) bool {
	for i, env := range envs {
		if env.Seq != last+uint64(i)+1 {
			return false
		}
	}
	return true
}

func (s *Service) logEvents(d decided) {
	for _, env := range d.append.Events {
		// At debug: the event stream is the record of every event; at info
		// the coordinator logs the life-cycle points. (Secrets are scrubbed.)
		if e := s.log.Debug(); e != nil {
			data, _ := json.Marshal(env.Data)
			e.Str(aggregateField(env), env.Aggregate).Str("request_id", env.RequestID).
				Str("event", env.Type).Uint64("seq", env.Seq).RawJSON("data", data).Msg("event appended")
		}
	}
}

// aggregateField is the log field that names an event's aggregate.
func aggregateField(env domain.Envelope) string {
	if env.IsAgent() {
		return "agent_id"
	}
	return "task_id"
}
