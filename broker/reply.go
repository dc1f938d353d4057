package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// RequestTimeout bounds the handling of one request to the hub, over NATS
// (agents' and commands alike).
const RequestTimeout = 30 * time.Second

// RequestContext is the context of a NATS request to the hub: its request
// id (the caller's when it is sane), and RequestTimeout.
func RequestContext(m *nats.Msg) (context.Context, context.CancelFunc) {
	id := logsink.RequestIDOr(m.Header.Get(protocol.HeaderRequestID))
	return context.WithTimeout(logsink.WithRequestID(context.Background(), id), RequestTimeout)
}

// Respond answers a NATS request as the HTTP API would: the body as JSON,
// the HTTP status and the request id in headers, and any other headers
// given as name, value pairs (an empty value sets none).
func Respond(ctx context.Context, m *nats.Msg, status int, body any, headers ...string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	r := nats.NewMsg(m.Reply)
	r.Header.Set(protocol.HeaderStatus, strconv.Itoa(status))
	r.Header.Set(protocol.HeaderRequestID, logsink.RequestID(ctx))
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	r.Data = b
	if err := m.RespondMsg(r); err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	return nil
}
