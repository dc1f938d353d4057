package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/telemetry"
)

// Client calls hub operations (protocol/ops) over NATS, as the CLI does.
type Client struct {
	nc  *nats.Conn
	url string
	// tokenID, when set, sends commands under the token's id
	// (agentcom.tok.<id>.cmd.<name>), so that the hub knows the caller's
	// role: any token's way. Without it, commands go on agentcom.cmd.<name>,
	// where only admins may publish.
	tokenID string
}

// Dial connects to the hub with a token. Its commands go under the
// token's id, with their answers in the token's own inbox: what a viewer
// or an agent token may use as well as an admin's.
func Dial(cfg config.Client) (*Client, error) {
	opts := []nats.Option{nats.Token(cfg.Token), nats.Name("agentcom-cli"), nats.Timeout(5 * time.Second), nats.NoReconnect()}
	opts = append(opts, broker.ClientTLS(cfg.TLS).Options()...)
	tokenID := ""
	if cfg.Token != "" {
		tokenID = broker.TokenID(cfg.Token)
		opts = append(opts, nats.CustomInboxPrefix(broker.TokenInbox(tokenID)))
	}
	nc, err := nats.Connect(cfg.Hub, opts...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization") {
			return nil, fmt.Errorf("connect to hub at %s: the token was refused", cfg.Hub)
		}
		if explained := broker.ExplainTLS(cfg.Hub, err); explained != err {
			return nil, fmt.Errorf("connect to hub at %s: %w", cfg.Hub, explained)
		}
		return nil, fmt.Errorf("connect to hub at %s (is it running?): %w", cfg.Hub, err)
	}
	return &Client{nc: nc, url: cfg.Hub, tokenID: tokenID}, nil
}

// On calls hub commands on a connection already made to url (an admin's:
// they go on agentcom.cmd.<name>).
func On(nc *nats.Conn, url string) *Client { return &Client{nc: nc, url: url} }

// Close closes the connection.
func (c *Client) Close() { c.nc.Close() }

// CallError is a hub reply with a non-2xx status.
type CallError struct {
	Status int
	Body   ops.ErrorBody
}

func (e *CallError) Error() string {
	var b strings.Builder
	b.WriteString(e.Body.Error)
	if e.Body.Detail != "" {
		b.WriteString(": " + e.Body.Detail)
	}
	if e.Body.TaskID != "" {
		b.WriteString(": " + e.Body.TaskID)
	}
	for _, f := range e.Body.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Detail)
	}
	return b.String()
}

// Do calls an operation of the table over NATS with a JSON body (which
// holds the path parameters, such as {"id": ...}, and the filters) and
// decodes a 2xx reply into out (which may be nil). Other replies are a
// *CallError.
func (c *Client) Do(ctx context.Context, op ops.Op, req, out any) error {
	return c.call(ctx, op.Name, req, out)
}

// call sends the command name.
func (c *Client) call(ctx context.Context, command string, req, out any) error {
	subject := broker.Command(command)
	if c.tokenID != "" {
		subject = broker.TokenCommand(c.tokenID, command)
	}
	m := nats.NewMsg(subject)
	if rid := logsink.RequestID(ctx); rid != "" {
		m.Header.Set(protocol.HeaderRequestID, rid)
	}
	for k, v := range headersOf(ctx) {
		m.Header.Set(k, v)
	}
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		m.Data = b
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("call %s: no hub answers at %s", command, c.url)
	} else if err != nil {
		return fmt.Errorf("call %s: %w", command, err)
	}
	status, _ := strconv.Atoi(resp.Header.Get(protocol.HeaderStatus))
	if status < 200 || status > 299 {
		ce := &CallError{Status: status}
		if err := json.Unmarshal(resp.Data, &ce.Body); err != nil {
			return fmt.Errorf("decode %s reply: %w", command, err)
		}
		return ce
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		return fmt.Errorf("decode %s reply: %w", command, err)
	}
	return nil
}

type headersKey struct{}

// WithHeader makes the calls made with ctx carry header k (the request id
// travels by itself: logsink.WithRequestID).
func WithHeader(ctx context.Context, k, v string) context.Context {
	h := map[string]string{k: v}
	for kk, vv := range headersOf(ctx) {
		if kk != k {
			h[kk] = vv
		}
	}
	return context.WithValue(ctx, headersKey{}, h)
}

func headersOf(ctx context.Context) map[string]string {
	h, _ := ctx.Value(headersKey{}).(map[string]string)
	return h
}

// TelemetryHistory reads the kept telemetry from since on through the
// hub, page by page, handing fn each event whose name matches filter.
func (c *Client) TelemetryHistory(ctx context.Context, since time.Time, filter string, fn func(telemetry.Event)) error {
	return telemetry.EachPage(ctx, func(ctx context.Context, q telemetry.HistoryQuery) (telemetry.HistoryPage, error) {
		var page telemetry.HistoryPage
		err := c.Do(ctx, ops.OpTelemetryHistory, q, &page)
		return page, err
	}, since, filter, fn)
}
