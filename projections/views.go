package projections

import (
	"sync"

	"github.com/agentcom/agentcom/domain"
)

// Views are all the read models of a hub, fed from one stream.
type Views struct {
	Tasks  *Tasks
	Agents *Agents
	// mu is held for writing while Apply feeds both projections, so that
	// a reader of both (a snapshot) sees them at one sequence.
	//
	// Lock order, everywhere in the hub: Views.mu, then Tasks.mu, then
	// Agents.mu, then the telemetry tap's mu (hub/telemetry.go), which the
	// agent observer takes under Agents.mu. Nothing takes an earlier lock
	// while holding a later one. The scheduler's lock (package agents)
	// comes before all of them: the scheduler takes it, then reads the
	// projections (read locks); no holder of a projection lock takes it.
	mu sync.RWMutex
}

// NewViews returns empty views.
func NewViews() *Views { return &Views{Tasks: NewTasks(), Agents: NewAgents()} }

// Apply applies events in stream order to every view.
func (v *Views) Apply(envs ...domain.Envelope) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.Tasks.Apply(envs...); err != nil {
		return err
	}
	return v.Agents.Apply(envs...)
}

// LastSeq is the sequence of the newest applied event.
func (v *Views) LastSeq() uint64 { return v.Tasks.LastSeq() }
