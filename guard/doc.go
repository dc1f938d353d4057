// Package guard keeps one misbehaving agent from slowing the others: a
// request budget per agent (a token bucket with a burst allowance) and a
// violation tracker. The tracker counts each agent's refused requests and
// permission violations, says when to write a log line (the first one in
// an interval, then a summary with a count, never one per message), and
// past a threshold of violations within a window says to disconnect the
// agent and refuse it for a cooldown that grows with each disconnect (as
// the original's violation tracker: 1×, 2×, then 10× the cooldown).
//
// It imports nothing of the hub: the caller refuses, replies, logs and
// disconnects; the guard only keeps the counts, on an injected clock.
package guard
