package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// HubError is a reply with a non-2xx status: a definite answer from the
// hub, unless Status is 5xx.
type HubError struct {
	Verb   string
	Status int
	Code   string
	Detail string
}

func (e *HubError) Error() string {
	s := fmt.Sprintf("%s refused: %d %s", e.Verb, e.Status, e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// hubCode returns the error code of a HubError, or "".
func hubCode(err error) (int, string) {
	var he *HubError
	if errors.As(err, &he) {
		return he.Status, he.Code
	}
	return 0, ""
}

// definite reports whether err is the hub's final word: a 4xx reply other
// than an unknown session. No reply (no responders, timeout, disconnected),
// a 5xx, or an unknown session (hello is said again) may change on a retry.
func definite(err error) bool {
	status, code := hubCode(err)
	return status >= 400 && status < 500 && code != protocol.CodeUnknownSession
}

// request sends one request to the hub and decodes a 2xx reply into out
// (which may be nil). A non-2xx reply is a *HubError.
func (s *Sidecar) request(ctx context.Context, verb, requestID string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", verb, err)
	}
	status, reply, err := s.exchange(ctx, verb, requestID, data)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		var e protocol.Error
		_ = json.Unmarshal(reply, &e)
		return &HubError{Verb: verb, Status: status, Code: e.Error, Detail: e.Detail}
	}
	if out == nil || len(reply) == 0 {
		return nil
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("decode %s reply: %w", verb, err)
	}
	return nil
}

// exchange sends one request as the agent and returns the reply's status
// and body. An unknown session makes the session loop say hello again.
func (s *Sidecar) exchange(ctx context.Context, verb, requestID string, data []byte) (int, []byte, error) {
	msg := nats.NewMsg(broker.AgentRequest(s.cfg.AgentID, verb))
	msg.Data = data
	msg.Header.Set(protocol.HeaderRequestID, requestID)
	if tool := toolOf(ctx); tool != "" {
		msg.Header.Set(protocol.HeaderMCPTool, tool)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return 0, nil, fmt.Errorf("request %s: %w", verb, err)
	}
	status, err := strconv.Atoi(resp.Header.Get(protocol.HeaderStatus))
	if err != nil {
		return 0, nil, fmt.Errorf("request %s: the reply has no status header", verb)
	}
	if status >= 400 && isUnknownSession(resp.Data) {
		s.requestHello()
	}
	return status, resp.Data, nil
}

func isUnknownSession(body []byte) bool {
	var e protocol.Error
	return json.Unmarshal(body, &e) == nil && e.Error == protocol.CodeUnknownSession
}

// backoff is an exponential delay: base, doubling up to max. It is safe
// for concurrent use.
type backoff struct {
	base, max time.Duration
	jitter    bool
	mu        sync.Mutex
	n         int
}

func newBackoff(base, max time.Duration) *backoff { return &backoff{base: base, max: max} }

// next returns the delay to wait now and moves to the following one.
func (b *backoff) next() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.max
	if b.n < 32 && b.base<<b.n < b.max && b.base<<b.n > 0 {
		d = b.base << b.n
	}
	b.n++
	if b.jitter { // up to 20% shorter, so that many sidecars spread out
		d -= time.Duration(rand.Int64N(int64(d)/5 + 1))
	}
	return d
}

// reset starts again from base.
func (b *backoff) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = 0
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
