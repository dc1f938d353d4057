package sidecar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// task is one held task. a never changes; rec, running and dropping are
// guarded by s.mu, and rec is changed only through update.
type task struct {
	a        protocol.Assignment
	rec      record
	ctx      context.Context // ends with errDropped or errShutdown
	cancel   context.CancelCauseFunc
	running  bool // a runner goroutine owns the task
	dropping bool // the hub took it back; it is being let go
	resumed  bool // loaded from state at start; never changes
	reported bool // its outcome reached the hub through the relay (under s.mu)
	log      logsink.Logger
	// stop ends the command alone (the task's context lives on for its
	// report); set while the work runs.
	stopMu sync.Mutex
	stop   context.CancelCauseFunc
}

// stopCommand ends the task's command, if it runs.
func (t *task) stopCommand(cause error) {
	t.stopMu.Lock()
	defer t.stopMu.Unlock()
	if t.stop != nil {
		t.stop(cause)
	}
}

func (t *task) setStop(f context.CancelCauseFunc) {
	t.stopMu.Lock()
	defer t.stopMu.Unlock()
	t.stop = f
}

func (s *Sidecar) newTask(rec record) *task {
	ctx, cancel := context.WithCancelCause(s.ctx)
	a := rec.Assignment
	return &task{a: a, rec: rec, ctx: ctx, cancel: cancel,
		log: s.log.With("task_id", a.TaskID).With("request_id", a.RequestID)}
}

// onAssignment takes a pushed assignment: persist it, then accept and run
// it; or decline it when the sidecar is full or stopping.
func (s *Sidecar) onAssignment(a protocol.Assignment) {
	if a.RequestID == "" {
		a.RequestID = logsink.NewRequestID() // one id follows the task's reports
	}
	d := s.admit(a)
	if d == nil {
		return
	}
	s.spawn(func() {
		err := s.request(s.ctx, broker.VerbDecline, a.RequestID, *d, nil)
		log := s.log.With("task_id", a.TaskID).With("request_id", a.RequestID)
		log.Info().Err(err).Uint64("generation", a.Generation).Str("reason", d.Reason).Msg("assignment declined")
	})
}

// admit persists and starts a, or returns the decline to send. A repeated
// push of a held generation returns nil and does nothing.
func (s *Sidecar) admit(a protocol.Assignment) *protocol.Decline {
	s.mu.Lock()
	defer s.mu.Unlock()
	decline := func(reason string) *protocol.Decline {
		return &protocol.Decline{TaskID: a.TaskID, Generation: a.Generation, Reason: reason}
	}
	if s.stopping {
		return decline(protocol.DeclineShuttingDown)
	}
	for _, t := range s.tasks {
		if t.dropping || t.a.TaskID != a.TaskID {
			continue
		}
		if t.a.Generation >= a.Generation {
			t.log.Info().Uint64("generation", a.Generation).Msg("assignment already held; push ignored")
			return nil
		}
		s.dropLocked(t, "assigned again with a newer generation")
	}
	if held := s.occupyingLocked(); len(held) >= s.cfg.MaxTasks {
		d := decline(protocol.DeclineBusy)
		d.Holding = held
		return d
	}
	t := s.newTask(record{Assignment: a, Status: statusAssigned, UpdatedAt: time.Now().UTC()})
	s.tasks = append(s.tasks, t)
	if err := s.saveLocked(); err != nil {
		s.removeLocked(t)
		t.log.Error().Err(err).Msg("cannot persist the assignment")
		return decline(protocol.DeclineStateNotSaved)
	}
	t.log.Info().Uint64("generation", a.Generation).Str("priority", a.Priority).Msg("task assigned")
	t.running = s.spawnLocked(func() { s.runTask(t) })
	return nil
}

// occupyingLocked lists the tasks that take room: held, not being
// dropped, work not yet finished. A task whose outcome is recorded takes
// none while it is reported: the hub frees the agent as soon as it stores
// the report, and pushes the next task before its answer comes back.
func (s *Sidecar) occupyingLocked() []protocol.Holding {
	var out []protocol.Holding
	for _, t := range s.tasks {
		if !t.dropping && t.rec.Outcome == nil {
			out = append(out, protocol.Holding{TaskID: t.a.TaskID, Generation: t.a.Generation, Status: t.rec.Status})
		}
	}
	return out
}

// onAbort stops the named generation of a task, without a report.
func (s *Sidecar) onAbort(ab protocol.Abort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tasks {
		if !t.dropping && t.a.TaskID == ab.TaskID && t.a.Generation == ab.Generation {
			s.dropLocked(t, "abort: "+ab.Reason)
			return
		}
	}
	s.log.Info().Str("task_id", ab.TaskID).Uint64("generation", ab.Generation).Msg("abort for a task not held; ignored")
}

// drop lets a task go because the hub took it back.
func (s *Sidecar) drop(t *task, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(t, why)
}

// dropLocked stops t's work (its runner then forgets it) or, when nothing
// runs it, forgets it now and ends any process a crashed run left behind.
func (s *Sidecar) dropLocked(t *task, why string) {
	if t.dropping {
		return
	}
	t.dropping = true
	t.cancel(errDropped)
	t.log.Notice().Uint64("generation", t.a.Generation).Str("reason", why).Msg("task dropped: the hub took it back")
	if t.running {
		return
	}
	endEarlierRun(t, t.rec)
	s.removeLocked(t)
}

// removeLocked forgets t and persists the rest.
func (s *Sidecar) removeLocked(t *task) {
	for i, x := range s.tasks {
		if x == t {
			s.tasks = append(s.tasks[:i:i], s.tasks[i+1:]...)
			break
		}
	}
	if err := s.saveLocked(); err != nil {
		s.log.Error().Err(err).Msg("cannot persist state")
	}
}

// saveLocked persists every task not being dropped.
func (s *Sidecar) saveLocked() error {
	recs := make([]record, 0, len(s.tasks))
	for _, t := range s.tasks {
		if !t.dropping {
			recs = append(recs, t.rec)
		}
	}
	return s.store.save(recs)
}

// update changes t's record and persists it.
func (s *Sidecar) update(t *task, f func(*record)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&t.rec)
	t.rec.UpdatedAt = time.Now().UTC()
	if err := s.saveLocked(); err != nil {
		t.log.Error().Err(err).Msg("cannot persist state")
	}
}

func (s *Sidecar) snapshot(t *task) record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.rec
}

// runTask takes a task from its persisted status to its report: accept,
// work, report. A shutdown leaves it persisted for the next run; anything
// else forgets it.
func (s *Sidecar) runTask(t *task) {
	defer s.end(t)
	rec := s.snapshot(t)
	if rec.Status == statusAssigned && !s.accept(t) {
		return
	}
	out := rec.Outcome
	if out != nil {
		endEarlierRun(t, rec) // a report claimed through the relay may have left its command running
	} else {
		o, ok := s.work(t)
		if !ok {
			return
		}
		if s.relayed(t) { // its command reported it through the relay
			return
		}
		if claimed := s.snapshot(t).Outcome; claimed != nil {
			out = claimed // claimed through the relay, not delivered: the runner sends it
		} else {
			s.update(t, func(r *record) { r.Outcome = &o })
			out = &o
		}
	}
	if s.report(t, *out) {
		s.worker.finish(t.a)
	}
}

// relayed reports whether t's outcome reached the hub through the relay.
func (s *Sidecar) relayed(t *task) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.reported
}

// end releases t when its runner stops.
func (s *Sidecar) end(t *task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.running = false
	if errors.Is(context.Cause(t.ctx), errShutdown) && !t.dropping {
		t.log.Info().Msg("task kept in state for the next run")
		return
	}
	t.cancel(context.Canceled)
	s.removeLocked(t)
}

// accept tells the hub the sidecar takes the task. A refusal drops it,
// except invalid_state when the hub may already have recorded an accept
// (the task was resumed from state, or an earlier try went unanswered):
// then the work goes on, and its first progress tells whether it is still
// the agent's.
func (s *Sidecar) accept(t *task) bool {
	a := t.a
	tries, err := s.sendTries(t, broker.VerbAccept, protocol.TaskRef{TaskID: a.TaskID, Generation: a.Generation})
	if _, code := hubCode(err); code == protocol.CodeInvalidState && (t.resumed || tries > 1) {
		t.log.Info().Err(err).Msg("accept may already be recorded; working on")
		err = nil
	}
	if err != nil {
		if definite(err) {
			t.log.Warning().Err(err).Msg("accept refused; task dropped")
		}
		return false
	}
	s.update(t, func(r *record) { r.Status = statusWorking })
	t.log.Notice().Uint64("generation", a.Generation).Msg("task accepted")
	return true
}

// endEarlierRun kills what an earlier run of a resumed task left behind:
// the process group it recorded, or one it started without recording.
func endEarlierRun(t *task, rec record) {
	pgid := rec.PGID
	switch {
	case pgid > 0 && endOrphan(pgid, t.a.TaskID):
	case pgid == 0 && t.resumed && rec.Status == statusWorking:
		if pgid = endUnrecorded(t.a.TaskID, t.a.Generation); pgid == 0 {
			return
		}
	default:
		return
	}
	t.log.Notice().Int("pgid", pgid).Msg("killed the process group left by an earlier run")
}

// work runs the task's work while reporting progress. ok is false when the
// work was stopped (dropped or shutdown) and there is nothing to report.
func (s *Sidecar) work(t *task) (out outcome, ok bool) {
	rec := s.snapshot(t)
	endEarlierRun(t, rec)
	ctx, stop := context.WithCancel(t.ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		s.progressLoop(ctx, t)
	}()
	defer func() {
		stop()
		<-progressDone
	}()
	j := job{
		a:        rec.Assignment,
		woken:    rec.Woken,
		log:      t.log,
		env:      s.relayEnv(),
		setPGID:  func(pgid int) { s.update(t, func(r *record) { r.PGID = pgid }) },
		setWoken: func() { s.update(t, func(r *record) { r.Woken = true }) },
	}
	t.log.Info().Msg("work started")
	cmdCtx, stopCmd := context.WithCancelCause(t.ctx)
	t.setStop(stopCmd)
	defer func() { t.setStop(nil); stopCmd(nil) }()
	out = fitResult(s.worker.run(cmdCtx, j))
	return out, t.ctx.Err() == nil
}

// progressLoop extends the task's lease every progress interval; a change
// of the interval (a hello's answer) applies at once. A 409 or 404 means
// the hub took the task back: the work is stopped.
func (s *Sidecar) progressLoop(ctx context.Context, t *task) {
	a := t.a
	for last := time.Now(); ; {
		if !s.progressWait(ctx, last) || s.snapshot(t).Outcome != nil { // reported through the relay
			return
		}
		last = time.Now()
		err := s.request(ctx, broker.VerbProgress, a.RequestID,
			protocol.Progress{TaskID: a.TaskID, Generation: a.Generation}, nil)
		switch {
		case err == nil:
			t.log.Debug().Msg("progress sent")
		case takenBack(err):
			s.drop(t, err.Error())
			return
		case ctx.Err() == nil:
			t.log.Warning().Err(err).Msg("progress not delivered")
		}
	}
}

// progressWait waits until a progress interval after last, or returns
// false when ctx ends first.
func (s *Sidecar) progressWait(ctx context.Context, last time.Time) bool {
	for {
		every, changed := s.progress.get()
		timer := time.NewTimer(time.Until(last.Add(every)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-changed:
			timer.Stop()
		case <-timer.C:
			return true
		}
	}
}

// report sends complete or fail until the hub answers definitely. It
// returns false if the task was dropped or the sidecar is stopping first.
func (s *Sidecar) report(t *task, out outcome) bool {
	a := t.a
	verb, body := reportOf(a, out)
	err := s.send(t, verb, body)
	if status, _ := hubCode(err); !out.Failed && (errors.Is(err, nats.ErrMaxPayload) || status == 413 || status == 422) {
		t.log.Warning().Err(err).Msg("result refused; reporting a failure instead")
		out = failed(fmt.Sprintf("result refused: %v", err))
		verb, body = reportOf(a, out)
		err = s.send(t, verb, body)
	}
	switch {
	case err == nil && out.Failed:
		t.log.Notice().Str("error", out.Error).Msg("task failed; reported")
	case err == nil:
		t.log.Notice().Msg("task completed; reported")
	case definite(err) || errors.Is(err, nats.ErrMaxPayload):
		t.log.Warning().Err(err).Msg("report refused; task let go")
	default:
		return false
	}
	return true
}

// takenBack reports whether a refusal means the task is no longer the
// agent's: a 404, or a 409 other than an unknown session (stale_generation,
// wrong_agent, invalid_state).
func takenBack(err error) bool {
	status, code := hubCode(err)
	return status == 404 || (status == 409 && code != protocol.CodeUnknownSession)
}

func reportOf(a protocol.Assignment, out outcome) (string, any) {
	if out.Failed {
		return broker.VerbFail, protocol.Fail{TaskID: a.TaskID, Generation: a.Generation, Error: out.Error}
	}
	return broker.VerbComplete, protocol.Complete{TaskID: a.TaskID, Generation: a.Generation, Result: out.Result,
		Usage: out.Usage}
}

// send makes one of the task's requests, with its request id, retrying
// with backoff while the hub does not answer definitely. It gives up when
// the task's context ends.
func (s *Sidecar) send(t *task, verb string, body any) error {
	_, err := s.sendTries(t, verb, body)
	return err
}

// sendTries is send, also returning how many tries were made.
func (s *Sidecar) sendTries(t *task, verb string, body any) (int, error) {
	b := newBackoff(s.cfg.RetryBase, s.cfg.RetryMax)
	for tries := 1; ; tries++ {
		err := s.request(t.ctx, verb, t.a.RequestID, body, nil)
		if err == nil || definite(err) || errors.Is(err, nats.ErrMaxPayload) {
			return tries, err
		}
		d := b.next()
		if t.ctx.Err() == nil {
			t.log.Warning().Err(err).Str("verb", verb).Dur("retry_in", d).Msg("hub did not answer; retrying")
		}
		if !sleep(t.ctx, d) {
			return tries, fmt.Errorf("send %s: %w", verb, context.Cause(t.ctx))
		}
	}
}
