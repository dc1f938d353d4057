// Package projections holds AgentCom's read models, built only by applying
// domain events in stream order: the task table, the priority queue (FIFO
// by submission within each priority), tasks by status, the dead letter
// set and the counters behind stats.
//
// Applying is deterministic and reads no clock, so the live state of a hub
// and a fresh replay of the same events are equal (a test proves it).
// A projection is safe for concurrent readers while one writer applies.
package projections
