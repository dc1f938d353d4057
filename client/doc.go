// Package client is the CLI's client of a running hub: it calls the
// operations of the table (protocol/ops) over NATS with an admin token,
// and turns a non-2xx answer into a CallError.
package client
