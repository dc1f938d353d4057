package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/limits"
	"github.com/agentcom/agentcom/protocol/ops"
)

// fileAdmin is the name of the admin.token file's token, and of callers
// on the admins' plain command subjects: never rate limited (the
// operator's own key, which scripts and agentcom bench use).
const fileAdmin = "admin"

// unlimited reports whether c is not rate limited: the hub, the
// admin.token file's token, and callers without a token (open reads,
// on loopback only: the limits are per token).
func unlimited(c call) bool {
	return c.role == "" || c.role == broker.RoleHub || (c.role == broker.RoleAdmin && c.who == fileAdmin)
}

// throttle spends one request of c's budget in op's tier, over HTTP and
// NATS alike; over it, the answer is 429 with the wait in Retry-After.
// Refusals are telemetry (rate.limited, at most one event a second per
// caller and tier, with the count).
func (a *API) throttle(op ops.Op, c call) (Reply, bool) {
	tier := op.TierOf()
	if a.lim == nil || tier == "" || unlimited(c) {
		return Reply{}, true
	}
	name := c.who
	d := a.lim.Allow(name, tier)
	if d.OK {
		return Reply{}, true
	}
	if d.Report > 0 {
		a.tel.Emit("rate.limited", map[string]float64{"count": float64(d.Report)},
			map[string]any{"name": name, "role": string(c.role), "tier": string(tier), "op": op.Name})
	}
	wait := int(math.Ceil(d.RetryAfter.Seconds()))
	return Reply{http.StatusTooManyRequests, ErrorBody{Error: "rate_limited", RetryAfterS: wait,
		Detail: fmt.Sprintf("%s is over its %s limit of %d a minute (%s); retry after %d s", name, tier, d.Limit, op.Name, wait)}}, false
}

// retryAfter is a reply's Retry-After header value, "" for none.
func retryAfter(r Reply) string {
	if e, ok := r.Body.(ErrorBody); ok && e.RetryAfterS > 0 {
		return fmt.Sprint(e.RetryAfterS)
	}
	return ""
}

// rateLimitCall answers the rate-limit operations.
func (a *API) rateLimitCall(set func(ctx context.Context, name string, body []byte) error) handler {
	return func(ctx context.Context, c call) Reply {
		name := c.params["name"]
		if err := domain.CheckAgentID(name); err != nil {
			return a.errorReply(ctx, fieldErr("name", "invalid", err.Error()))
		}
		err := set(ctx, name, c.body)
		if errors.Is(err, broker.ErrNoRateLimit) {
			return Reply{http.StatusNotFound, ErrorBody{Error: "rate_limit_not_found", Detail: name}}
		} else if err != nil {
			return a.errorReply(ctx, err)
		}
		a.log.Ctx(ctx).Notice().Str("name", name).Str("by", c.who).Msg("rate limits changed")
		return Reply{http.StatusOK, a.lim.State()}
	}
}

// rateLimitHandlers are the five rate-limit operations' handlers.
func (a *API) rateLimitHandlers() map[string]handler {
	return map[string]handler{
		ops.OpRateLimitList.Name: func(context.Context, call) Reply { return Reply{http.StatusOK, a.lim.State()} },
		ops.OpRateLimitSet.Name: a.rateLimitCall(func(ctx context.Context, name string, body []byte) error {
			var o limits.Override
			if err := json.Unmarshal(body, &o); err != nil {
				return badBody(`the body must be a JSON object such as {"heavy": 20}`)
			}
			if err := o.Check(); err != nil {
				return fieldErr("body", "invalid", err.Error())
			}
			return a.rl.SetOverride(ctx, name, o)
		}),
		ops.OpRateLimitClear.Name: a.rateLimitCall(func(ctx context.Context, name string, _ []byte) error {
			return a.rl.ClearOverride(ctx, name)
		}),
		ops.OpRateLimitExempt.Name: a.rateLimitCall(func(ctx context.Context, name string, _ []byte) error {
			return a.rl.SetExempt(ctx, name, true)
		}),
		ops.OpRateLimitUnexempt.Name: a.rateLimitCall(func(ctx context.Context, name string, _ []byte) error {
			return a.rl.SetExempt(ctx, name, false)
		}),
	}
}
