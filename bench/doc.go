// Package bench holds the runner behind `agentcom bench`: it measures a
// hub end to end (submit, assign, push, accept, complete) with in-process
// workers that speak the agent protocol over their own NATS connections,
// in three modes (burn-down, continuous, latency), against an embedded hub
// in a temporary data directory or a running one, and measures raw
// JetStream publishes on an embedded server with the same sync setting
// beside it. It returns figures; the CLI prints them.
package bench
