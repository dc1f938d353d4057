// Package agents is the hub's side of the agents: the Coordinator answers
// their requests (each agent on a lane of its own), screens them (request
// budget and violations), matches queued tasks to free agents (the
// scheduler), pushes assignments, and takes work back from agents that
// stop answering (leases and the sweep). It changes state only through
// the writer's commands.
package agents
