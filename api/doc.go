// Package api serves the hub's operations. Each operation is declared
// once in the table (protocol/ops) and bound here to its handler; the
// HTTP mux, the NATS command API (agentcom.cmd.<name>) and the OpenAPI 3.1
// document (GET /api/openapi.json) are all built from that binding, so
// both transports serve the same set with the same status codes.
// Handlers read the projections and change state only through the writer.
package api
