package agents

import "time"

// What the hub's own tests and tools use to drive and read the
// coordinator step by step, instead of waiting for its loops.

// Match is one task handed to one agent by a scheduling pass.
type Match struct{ TaskID, AgentID string }

// Schedule runs one scheduling pass now and returns its matches (already
// reserved and on their way) and when the first waiting task comes due.
func (c *Coordinator) Schedule(trigger string) ([]Match, time.Time) {
	ms, next := c.sched.pass(trigger)
	out := make([]Match, len(ms))
	for i, m := range ms {
		out[i] = Match{TaskID: m.task, AgentID: m.agent}
	}
	return out, next
}

// Wake asks the scheduler for a pass soon; wakes coalesce.
func (c *Coordinator) Wake() { c.sched.trigger() }

// Pause stops (true) or resumes new matches.
func (c *Coordinator) Pause(on bool) { c.sched.paused.Store(on) }

// IgnoreDisconnects stops reading the server's disconnect advisories, as
// if every one were lost from now on: the reconcile alone notices.
func (c *Coordinator) IgnoreDisconnects() {
	if c.sysConn != nil {
		c.sysConn.Close()
	}
}

// Sweep runs one lease sweep now: reclaims, flags, the reconcile and
// evictions.
func (c *Coordinator) Sweep() { c.sweep() }

// CoolingDown reports whether work is kept away from agentID after a
// decline.
func (c *Coordinator) CoolingDown(agentID string) bool {
	s := c.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.now().Before(s.cooldown[agentID])
}

// Hold keeps work away from an agent until release, as a hello does.
func (c *Coordinator) Hold(agentID string) (release func()) { return c.sched.hold(agentID) }

// Heard marks agentID as heard from now.
func (c *Coordinator) Heard(agentID string) { c.presence.touch(agentID, c.now()) }
