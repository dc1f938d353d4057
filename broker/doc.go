// Package broker holds everything that touches NATS: the embedded server
// with JetStream, client authentication, stream and bucket setup, and the
// event store (atomic appends with optimistic concurrency and idempotent
// retries, reads by sequence).
//
// Every subject name lives in subjects.go. Nothing else in the project
// builds a subject by hand.
package broker
