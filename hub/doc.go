// Package hub wires a running AgentCom hub together: it is built from
// Params and starts its parts as the steps of one lifecycle.Stack (the
// data directory lock, the embedded broker, the store and tokens, logs,
// telemetry, the projections and the writer, the store upkeep, the agent
// coordinator, the NATS commands and HTTP), and stops the started ones in
// reverse. It also holds the telemetry tap, which turns each applied group
// into telemetry events. The parts themselves live in their own packages:
// writer, agents, storeops, api (see docs/architecture.md).
package hub
