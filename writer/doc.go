// Package writer is the single writer of domain events: Service takes
// typed commands (a task's or an agent's), groups the waiting ones,
// decides each against the projections, appends their events to the
// store (one group commit), applies them to the projections and answers
// the callers; then it hands the applied group, with the state its events
// left behind, to whoever reacts (telemetry, the scheduler).
package writer
