// Package sidecar is the agent-side NATS client (connect, identify,
// heartbeat, accept, run, report, reconnect, recover). It is built by the
// agents issue; the hub's task protocol it will speak is already in
// docs/protocol.md.
package sidecar
