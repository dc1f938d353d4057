package hub

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
)

// appendTimeout bounds the wait for one group's acks.
const appendTimeout = 15 * time.Second

// applier reads each flight's acks in send order, applies what was stored
// and answers the callers.
func (s *Service) applier() {
	for f := range s.flights {
		s.land(f)
	}
}

// land settles one flight. A conflict sends the command back to the
// decider once; after a failed atomic batch every command goes back to be
// sent alone; any other failure is the caller's answer.
func (s *Service) land(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	results := f.sent.Wait(ctx)
	c := &completion{}
	var stored []decided
	catchUp := false
	for i, r := range results {
		d := f.group[i]
		c.tasks = append(c.tasks, d.p.cmd.TaskID())
		switch {
		case r.Err == nil:
			for j := range d.envs {
				d.envs[j].Seq = r.Seqs[j]
			}
			stored = append(stored, d)
		case f.atomic:
			d.p.single = true
			c.retry = append(c.retry, d.p)
		case errors.Is(r.Err, broker.ErrConflict) && d.p.conflicts == 0:
			d.p.conflicts++
			catchUp = true
			c.retry = append(c.retry, d.p)
		default:
			answer(d.p, nil, r.Err)
		}
	}
	if f.atomic && len(stored) == 0 {
		s.log.Warning().Err(results[0].Err).Int("commands", len(f.group)).Msg("atomic group append failed, sending its commands alone")
	} else if catchUp {
		s.log.Warning().Int("commands", len(c.retry)).Msg("append conflict, catching up and deciding again")
	}
	s.apply(stored, catchUp)
	s.completed <- c
}

// apply applies stored events in stream order and answers their callers.
// When another writer's events may lie between (a conflict, or a gap in
// the sequences), it reads the stream instead, which also brings in ours.
func (s *Service) apply(group []decided, catchUp bool) {
	var all []domain.Envelope
	for _, d := range group {
		all = append(all, d.envs...)
	}
	slices.SortFunc(all, func(a, b domain.Envelope) int { return cmp.Compare(a.Seq, b.Seq) })
	all = slices.DeleteFunc(all, func(e domain.Envelope) bool { return e.Seq <= s.tasks.LastSeq() })
	if catchUp || !contiguous(s.tasks.LastSeq(), all) {
		ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
		defer cancel()
		if err := s.CatchUp(ctx); err != nil {
			s.log.Error().Err(err).Msg("catch up after append")
		}
	} else if err := s.tasks.Apply(all...); err != nil {
		s.log.Error().Err(err).Msg("apply appended events")
	}
	if len(group) > 0 {
		s.commits.Add(1)
		s.commands.Add(uint64(len(group)))
	}
	for _, d := range group {
		s.logEvents(d)
		answer(d.p, d.after, nil)
	}
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
	for _, env := range d.envs {
		s.log.Info().Str("task_id", env.Aggregate).Str("request_id", env.RequestID).
			Str("event", env.Type).Uint64("seq", env.Seq).Msg("event appended")
	}
}
