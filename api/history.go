package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/telemetry"
)

// TelemetryHistory answers telemetry.history (and GET
// /api/telemetry/history, whose query string is the body): one page of the events the
// TELEMETRY stream keeps, read with the hub's own connection. Clients get
// no JetStream API (docs/durability.md, who may write or remove events).
func (a *API) TelemetryHistory(ctx context.Context, nc *nats.Conn, data []byte) Reply {
	var q telemetry.HistoryQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"since": "2026-01-02T15:04:05Z", "filter": "task.*"}`))
	}
	if q.Filter == "" {
		q.Filter = ">"
	}
	if !server.IsValidSubject(broker.TelemetryPrefix + q.Filter) {
		return a.errorReply(ctx, fieldErr("filter", "invalid", "want an event name pattern such as task.*, agent.> or fsm.transition"))
	}
	if q.Since.IsZero() {
		return a.errorReply(ctx, fieldErr("since", "required", "want the time to read from, RFC 3339"))
	}
	page, err := telemetry.ReadHistoryPage(ctx, nc, q, telemetry.HistoryPageBytes)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Reply{http.StatusNotFound, ErrorBody{Error: "telemetry_off", Detail: "the hub keeps no telemetry (telemetry is off)"}}
	} else if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, page}
}
