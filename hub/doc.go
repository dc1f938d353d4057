// Package hub is AgentCom's command service and its transports: the single
// writer of domain events (validate, decide, append, apply, reply), the
// HTTP API, the NATS request/reply API, and the wiring that starts an
// embedded broker, rebuilds projections and serves.
//
// # Write path and group commit
//
// Every command goes through one loop. The loop takes the first waiting
// command and then every other command already waiting (up to MaxBatch),
// decides each against the projection plus the events decided before it
// in the same group, appends all their events to the EVENTS stream as one
// atomic batch (one fsync), applies them to the projections and only then
// answers each caller. Commands that arrive together are therefore made
// durable together, and none is answered before its events are durable.
// If the group's append fails, each command is retried on its own so that
// one conflicting command cannot fail the others.
package hub
