package hub

import (
	"context"
	"errors"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
)

// appendTimeout bounds one group's append, whatever the callers' contexts.
const appendTimeout = 15 * time.Second

// decided is one command's share of a group commit.
type decided struct {
	p      *pending
	envs   []domain.Envelope
	after  *domain.Task
	append broker.Append
}

// speculative is a task as decided so far in the group, with the sequence
// its first append in the group must expect.
type speculative struct {
	task *domain.Task
	seq  uint64
}

// process decides, appends and applies one group, then answers each caller.
func (s *Service) process(group []*pending) {
	ok := s.decide(group)
	if len(ok) == 0 {
		return
	}
	if err := s.commit(ok); err == nil {
		return
	} else if len(ok) > 1 {
		s.log.Warning().Err(err).Int("commands", len(ok)).Msg("group append failed, retrying one by one")
		for _, d := range ok {
			s.processOne(d.p)
		}
		return
	} else {
		s.retryAfterConflict(ok[0].p, err)
	}
}

func (s *Service) processOne(p *pending) {
	ok := s.decide([]*pending{p})
	if len(ok) == 0 {
		return
	}
	if err := s.commit(ok); err != nil {
		s.retryAfterConflict(p, err)
	}
}

// retryAfterConflict catches the projection up with the stream and decides
// the command once more; any other failure is the caller's answer.
func (s *Service) retryAfterConflict(p *pending, err error) {
	if !errors.Is(err, broker.ErrConflict) {
		s.answer(p, nil, err)
		return
	}
	s.log.Warning().Err(err).Str("task_id", p.cmd.TaskID()).Msg("append conflict, catching up")
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	if cerr := s.CatchUp(ctx); cerr != nil {
		s.answer(p, nil, cerr)
		return
	}
	ok := s.decide([]*pending{p})
	if len(ok) == 0 {
		return
	}
	if err := s.commit(ok); err != nil {
		s.answer(p, nil, err)
	}
}

// decide runs each command against the state decided so far; rejected
// commands are answered at once and left out of the result.
func (s *Service) decide(group []*pending) []decided {
	now := s.now().UTC()
	spec := map[string]*speculative{}
	out := make([]decided, 0, len(group))
	for _, p := range group {
		id := p.cmd.TaskID()
		cur := spec[id]
		if cur == nil {
			t, seq, _ := s.tasks.Get(id)
			cur = &speculative{task: t, seq: seq}
			spec[id] = cur
		}
		events, err := p.cmd.Decide(cur.task, now)
		if err != nil {
			s.answer(p, nil, err)
			continue
		}
		envs := envelopes(p.ctx, id, now, events)
		for _, env := range envs {
			cur.task = domain.Evolve(cur.task, env)
		}
		out = append(out, decided{p: p, envs: envs, after: cur.task,
			append: broker.Append{Subject: broker.TaskEvents(id), ExpectedSeq: cur.seq, Events: envs}})
	}
	return out
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

// commit appends the group atomically, applies it and answers everyone.
// On error nothing was applied or answered.
func (s *Service) commit(group []decided) error {
	appends := make([]broker.Append, len(group))
	for i, d := range group {
		appends[i] = d.append
	}
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	seqs, err := s.store.Append(ctx, appends)
	if err != nil {
		return err
	}
	s.commits.Add(1)
	s.commands.Add(uint64(len(group)))
	all := make([]domain.Envelope, 0, len(seqs))
	for _, d := range group {
		for j := range d.envs {
			d.envs[j].Seq = seqs[len(all)]
			all = append(all, d.envs[j])
		}
	}
	if err := s.tasks.Apply(all...); err != nil {
		s.log.Error().Err(err).Msg("apply appended events")
	}
	for _, d := range group {
		s.logEvents(d)
		s.answer(d.p, d.after, nil)
	}
	return nil
}

func (s *Service) logEvents(d decided) {
	for _, env := range d.envs {
		s.log.Info().Str("task_id", env.Aggregate).Str("request_id", env.RequestID).
			Str("event", env.Type).Uint64("seq", env.Seq).Msg("event appended")
	}
}

func (s *Service) answer(p *pending, t *domain.Task, err error) {
	p.result <- outcome{task: t, err: err}
}
