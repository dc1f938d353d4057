// Package telemetry emits AgentCom's telemetry: point events and spans,
// published as JSON on agent_com.<name> subjects and handed to in-process
// handlers. The TELEMETRY stream keeps them for a while, in batches of one
// event a line, and History reads them back.
//
// Emitting never blocks the caller: an event is queued, and one goroutine
// encodes and publishes it and runs the handlers. When the queue is full
// the event is dropped and counted (Dropped). A handler that panics is
// reported at error and stays attached.
//
// Every event name, its measurements and its metadata are listed once, in
// catalog.go; docs/telemetry.md documents the same list and a test keeps
// the two in step. No business logic reads telemetry.
package telemetry
