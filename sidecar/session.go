package sidecar

import (
	"fmt"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// sessionLoop says hello at every connect, retries it with backoff until
// the hub answers, then heartbeats at the interval the hub asked for.
func (s *Sidecar) sessionLoop() {
	defer s.wg.Done()
	retry := newBackoff(s.cfg.RetryBase, s.cfg.RetryMax)
	helloed, interval := false, DefaultHeartbeat
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.rehello:
			helloed = false
		case <-timer.C:
		}
		if !helloed {
			iv, err := s.hello()
			if _, code := hubCode(err); code == protocol.CodeSessionReplaced {
				s.fail(fmt.Errorf("another sidecar took over agent %s: %w", s.cfg.AgentID, err))
				return
			}
			if err != nil {
				d := retry.next()
				s.log.Warning().Err(err).Dur("retry_in", d).Msg("hello not answered")
				timer.Reset(d)
				continue
			}
			retry.reset()
			helloed, interval = true, iv
		} else {
			s.heartbeat()
		}
		timer.Reset(interval)
	}
}

// hello identifies the sidecar, reports the task it holds, and applies the
// hub's answer. It returns the heartbeat interval.
func (s *Sidecar) hello() (time.Duration, error) {
	held, holding := s.holding()
	rid := logsink.NewRequestID()
	msg := protocol.Hello{Name: s.cfg.Name, Capabilities: s.cfg.Capabilities, Session: s.session, Holding: holding}
	var reply protocol.HelloReply
	if err := s.request(s.ctx, broker.VerbHello, rid, msg, &reply); err != nil {
		return 0, err
	}
	s.reconnect.reset()
	e := s.log.Info().Str("request_id", rid).Str("session", s.session).Int64("heartbeat_interval_ms", reply.HeartbeatIntervalMS)
	if holding != nil {
		e = e.Str("task_id", holding.TaskID).Str("action", reply.Action).Str("reason", reply.Reason)
	}
	e.Msg("hello answered")
	s.fitProgress(reply)
	s.reconcile(held, reply)
	if reply.HeartbeatIntervalMS <= 0 {
		return DefaultHeartbeat, nil
	}
	return time.Duration(reply.HeartbeatIntervalMS) * time.Millisecond, nil
}

// holding returns the task hello reports: the oldest held one whose work
// is not finished, else the oldest held one. A task pushed while another
// was being reported means the hub already stored that report.
func (s *Sidecar) holding() (*task, *protocol.Holding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var held *task
	for _, t := range s.tasks {
		if t.dropping {
			continue
		}
		if held == nil || (held.rec.Outcome != nil && t.rec.Outcome == nil) {
			held = t
		}
	}
	if held == nil {
		return nil, nil
	}
	return held, &protocol.Holding{TaskID: held.a.TaskID, Generation: held.a.Generation, Status: held.rec.Status}
}

// reconcile applies the hub's answer about the held task: continue keeps
// it (and resumes it if nothing runs it, after a restart), anything else
// drops it. Other tasks that nothing runs were not reported, since hello
// holds one task, so the hub does not count them as ours: they are dropped.
func (s *Sidecar) reconcile(held *task, reply protocol.HelloReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range append([]*task(nil), s.tasks...) {
		switch {
		case t.dropping:
		case t == held && reply.Action == protocol.ActionContinue:
			if !t.running && s.spawnLocked(func() { s.runTask(t) }) {
				t.running = true
				t.log.Notice().Str("status", t.rec.Status).Msg("hub says continue; resuming task")
			}
		case t == held:
			s.dropLocked(t, "hello: "+nonEmpty(reply.Action, "no action")+" "+reply.Reason)
		case !t.running:
			s.dropLocked(t, "not reported in hello")
		}
	}
}

// heartbeat keeps the session alive. An unknown session makes request
// ask for hello again.
func (s *Sidecar) heartbeat() {
	rid := logsink.NewRequestID()
	err := s.request(s.ctx, broker.VerbHeartbeat, rid, protocol.Heartbeat{Session: s.session}, nil)
	if _, code := hubCode(err); code == protocol.CodeUnknownSession {
		s.log.Info().Str("request_id", rid).Msg("hub does not know the session; saying hello again")
	} else if err != nil && s.ctx.Err() == nil {
		s.log.Warning().Err(err).Str("request_id", rid).Msg("heartbeat not answered")
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fitProgress keeps progress well inside the hub's stuck threshold: the
// interval in use is the configured one, or the hub's if it is shorter.
func (s *Sidecar) fitProgress(reply protocol.HelloReply) {
	every := s.cfg.ProgressInterval
	if hub := time.Duration(reply.ProgressIntervalMS) * time.Millisecond; hub > 0 && hub < every {
		every = hub
	}
	if s.progress.set(every) && every != s.cfg.ProgressInterval {
		s.log.Notice().Dur("progress_interval", every).Dur("configured", s.cfg.ProgressInterval).
			Int64("stuck_threshold_ms", reply.StuckThresholdMS).
			Msg("progress interval shortened to a third of the hub's stuck threshold")
	}
}

// progressClock is an interval that can change while it is waited on.
type progressClock struct {
	mu      sync.Mutex
	every   time.Duration
	changed chan struct{} // closed when every changes
}

// get returns the interval and a channel closed when it changes.
func (p *progressClock) get() (time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.every, p.changed
}

// set changes the interval and reports whether it changed.
func (p *progressClock) set(every time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if every == p.every {
		return false
	}
	p.every = every
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
	return true
}
