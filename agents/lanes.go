package agents

import (
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/broker"
)

// laneIdle is how long an agent's lane stays open after its last
// connection closed: a sidecar that reconnects finds it still there.
const laneIdle = time.Minute

// openLanes gives every agent its own connection for its requests
// (broker.Lanes), opened when it authenticates; agents that connected
// before the coordinator started get theirs now.
func (c *Coordinator) openLanes() error {
	c.lanes = c.srv.AgentLanes(broker.HubQueue, c.receive)
	c.srv.SetAgentAdmission(c.admit)
	for _, id := range c.srv.ConnectedAgents() {
		if err := c.arrive(id); err != nil {
			return fmt.Errorf("open agent lanes: %w", err)
		}
	}
	return nil
}

// errCooldown refuses an agent in its violation cooldown at the door.
var errCooldown = errors.New("agent in its violation cooldown")

// admit decides whether an agent may connect: not during its violation
// cooldown; otherwise its lane opens (arrive).
func (c *Coordinator) admit(agentID string) error {
	if c.refused(agentID) {
		return errCooldown
	}
	return c.arrive(agentID)
}

// arrive opens the lane of an agent being let in; a failure refuses the
// connection (the sidecar tries again) and is logged.
func (c *Coordinator) arrive(agentID string) error {
	err := c.lanes.Open(agentID, c.now())
	if err != nil && err != broker.ErrLanesClosed {
		c.log.Error().Err(err).Str("agent_id", agentID).Msg("agent refused: its lane did not open")
	}
	return err
}

// sweepLanes closes the lanes of agents long gone.
func (c *Coordinator) sweepLanes(now time.Time) {
	c.lanes.Sweep(now, laneIdle)
}
