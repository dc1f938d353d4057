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
			interval = s.heartbeat(interval)
		}
		timer.Reset(interval)
	}
}

// hello identifies the sidecar, reports every task it holds, and applies
// the hub's answer. It returns the heartbeat interval.
func (s *Sidecar) hello() (time.Duration, error) {
	held, holdings := s.holdings()
	rid := logsink.NewRequestID()
	msg := protocol.Hello{Name: s.cfg.Name, Capabilities: s.cfg.Capabilities, Session: s.session,
		MaxTasks: s.cfg.MaxTasks, Held: holdings}
	var reply protocol.HelloReply
	if err := s.request(s.ctx, broker.VerbHello, rid, msg, &reply); err != nil {
		return 0, err
	}
	s.reconnect.reset()
	s.log.Info().Str("request_id", rid).Str("session", s.session).Int64("heartbeat_interval_ms", reply.HeartbeatIntervalMS).
		Int("held", len(holdings)).Msg("hello answered")
	s.fitProgress(reply.Timings)
	s.reconcile(held, reply)
	s.spawn(s.syncInbox)
	return heartbeatEvery(reply.Timings, DefaultHeartbeat), nil
}

// heartbeatEvery is the hub's heartbeat interval, or was when it gives none.
func heartbeatEvery(t protocol.Timings, was time.Duration) time.Duration {
	if t.HeartbeatIntervalMS <= 0 {
		return was
	}
	return time.Duration(t.HeartbeatIntervalMS) * time.Millisecond
}

// holdings returns the tasks hello reports: every held one not being
// dropped, oldest first.
func (s *Sidecar) holdings() ([]*task, []protocol.Holding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var held []*task
	var out []protocol.Holding
	for _, t := range s.tasks {
		if !t.dropping {
			held = append(held, t)
			out = append(out, protocol.Holding{TaskID: t.a.TaskID, Generation: t.a.Generation, Status: t.rec.Status})
		}
	}
	return held, out
}

// reconcile applies the hub's answer about each reported task: continue
// keeps it (and resumes it if nothing runs it, after a restart), anything
// else drops it. A task pushed since the hello was sent was not reported;
// it runs already, and stays.
func (s *Sidecar) reconcile(held []*task, reply protocol.HelloReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range held {
		st := settledFor(t, reply, len(held))
		switch {
		case t.dropping:
		case st.Action == protocol.ActionContinue:
			if !t.running && s.spawnLocked(func() { s.runTask(t) }) {
				t.running = true
				t.log.Notice().Str("status", t.rec.Status).Msg("hub says continue; resuming task")
			}
		default:
			s.dropLocked(t, "hello: "+nonEmpty(st.Action, "no action")+" "+st.Reason)
		}
	}
}

// settledFor finds the hub's answer about t, one of n reported. A hub
// from before slots answers about a single task in Action.
func settledFor(t *task, reply protocol.HelloReply, n int) protocol.Settled {
	for _, st := range reply.Tasks {
		if st.TaskID == t.a.TaskID && st.Generation == t.a.Generation {
			return st
		}
	}
	if len(reply.Tasks) == 0 && n == 1 {
		return protocol.Settled{TaskID: t.a.TaskID, Generation: t.a.Generation, Action: reply.Action, Reason: reply.Reason}
	}
	return protocol.Settled{}
}

// heartbeat keeps the session alive and returns the heartbeat interval
// the hub now asks for (every, unless it changed). An unknown session
// makes request ask for hello again.
func (s *Sidecar) heartbeat(every time.Duration) time.Duration {
	rid := logsink.NewRequestID()
	var reply protocol.HeartbeatReply
	err := s.request(s.ctx, broker.VerbHeartbeat, rid, protocol.Heartbeat{Session: s.session}, &reply)
	if _, code := hubCode(err); code == protocol.CodeUnknownSession {
		s.log.Info().Str("request_id", rid).Msg("hub does not know the session; saying hello again")
	} else if err != nil && s.ctx.Err() == nil {
		s.log.Warning().Err(err).Str("request_id", rid).Msg("heartbeat not answered")
	}
	if err != nil || reply.Timings == (protocol.Timings{}) { // no answer, or a hub from before run-time settings
		return every
	}
	s.fitProgress(reply.Timings)
	if next := heartbeatEvery(reply.Timings, every); next != every {
		s.log.Notice().Str("request_id", rid).Dur("heartbeat_interval", next).Dur("was", every).
			Msg("hub changed the heartbeat interval")
		return next
	}
	return every
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fitProgress keeps progress well inside the hub's stuck threshold: the
// interval in use is the configured one, or the hub's if it is shorter.
func (s *Sidecar) fitProgress(reply protocol.Timings) {
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
