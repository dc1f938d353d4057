package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// requestID is the caller's request id when it is sane, else a new one:
// for the X-Request-Id header and the NATS request-id header alike.
func requestID(given string) string {
	if validRequestID(given) {
		return given
	}
	return logsink.NewRequestID()
}

// natsRequest is the context of a NATS request: its request id, and the
// time the hub gives it.
func natsRequest(m *nats.Msg) (context.Context, context.CancelFunc) {
	id := requestID(m.Header.Get(protocol.HeaderRequestID))
	return context.WithTimeout(logsink.WithRequestID(context.Background(), id), natsRequestTimeout)
}

// respond answers a NATS request as the HTTP API would: the body as JSON,
// the HTTP status and the request id in headers.
func respond(ctx context.Context, m *nats.Msg, status int, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	r := nats.NewMsg(m.Reply)
	r.Header.Set(protocol.HeaderStatus, strconv.Itoa(status))
	r.Header.Set(protocol.HeaderRequestID, logsink.RequestID(ctx))
	r.Data = b
	if err := m.RespondMsg(r); err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	return nil
}
