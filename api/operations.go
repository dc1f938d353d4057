package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
)

// call is one operation's input, whichever transport it came by: who
// asked, the path parameters and the body (over HTTP, an op with a Query
// gets the query string as a JSON object for its body).
type call struct {
	who    string      // the token's name ("" without a token)
	role   broker.Role // the token's role ("" without a token)
	params map[string]string
	body   []byte
}

// handler answers one operation.
type handler func(ctx context.Context, c call) Reply

// boundOp is an operation of the table with its handler.
type boundOp struct {
	ops.Op
	handle handler
}

// handlers are the API's answers to the table's operations, by name.
func (a *API) handlers() map[string]handler {
	hs := map[string]handler{
		ops.OpHealth.Name:  func(context.Context, call) Reply { return a.Health() },
		ops.OpOpenAPI.Name: func(context.Context, call) Reply { return Reply{http.StatusOK, openAPIDoc()} },
		ops.OpSchemas.Name: func(context.Context, call) Reply { return Reply{http.StatusOK, schemasDoc()} },
		ops.OpTaskSubmit.Name: func(ctx context.Context, c call) Reply {
			return a.Submit(ctx, c.who, c.body)
		},
		ops.OpTaskSubmitBatch.Name: func(ctx context.Context, c call) Reply {
			return a.SubmitBatch(ctx, c.who, c.body)
		},
		ops.OpTaskList.Name:       a.listCall,
		ops.OpTaskGet.Name:        a.getCall,
		ops.OpTaskStats.Name:      func(context.Context, call) Reply { return a.Stats() },
		ops.OpTaskDeadLetter.Name: func(context.Context, call) Reply { return a.DeadLetter() },
		ops.OpTaskRetry.Name:      func(ctx context.Context, c call) Reply { return a.Retry(ctx, c.who, c.params["id"]) },
		ops.OpTaskCancel.Name: func(ctx context.Context, c call) Reply {
			return a.Cancel(ctx, c.who, c.params["id"], c.body)
		},
		ops.OpAgentList.Name:   a.agentsCall,
		ops.OpAgentStates.Name: a.agentsCall,
		ops.OpAgentGet.Name:    a.agentCall,
		ops.OpTokenCreate.Name: func(ctx context.Context, c call) Reply { return a.CreateToken(ctx, c.body) },
		ops.OpTokenList.Name:   func(ctx context.Context, _ call) Reply { return a.ListTokens(ctx) },
		ops.OpTokenRevoke.Name: func(ctx context.Context, c call) Reply {
			return a.RevokeToken(ctx, c.params["agent_id"])
		},
		ops.OpLogLevelGet.Name: func(context.Context, call) Reply { return a.LogLevels() },
		ops.OpLogLevelSet.Name: func(ctx context.Context, c call) Reply {
			return a.SetLogLevel(ctx, c.who, c.body)
		},
		ops.OpStoreCompact.Name: func(ctx context.Context, _ call) Reply { return a.Compact(ctx) },
		ops.OpStoreBackup.Name:  func(ctx context.Context, _ call) Reply { return a.Backup(ctx) },
		ops.OpStoreRestore.Name: func(ctx context.Context, c call) Reply { return a.Restore(ctx, c.body) },
		ops.OpStoreHealth.Name:  func(ctx context.Context, _ call) Reply { return a.StoreHealth(ctx) },
		ops.OpTelemetryHistory.Name: func(ctx context.Context, c call) Reply {
			return a.TelemetryHistory(ctx, a.admin.nc, c.body)
		},
	}
	hs[ops.OpUsage.Name] = a.usageCall
	hs[ops.OpPushTask.Name] = func(ctx context.Context, c call) Reply { return a.PushTask(ctx, c.who, c.body) }
	hs[ops.OpAgentReset.Name] = func(ctx context.Context, c call) Reply { return a.ResetAgent(ctx, c.params["agent_id"]) }
	hs[ops.OpOnboard.Name] = func(ctx context.Context, c call) Reply { return a.Onboard(ctx, c.who, c.body) }
	hs[ops.OpMetricsText.Name] = a.metricsText
	hs[ops.OpMetricsGet.Name] = func(ctx context.Context, _ call) Reply {
		return Reply{http.StatusOK, a.metrics.Snapshot(ctx)}
	}
	hs[ops.OpAlertList.Name] = func(context.Context, call) Reply { return Reply{http.StatusOK, a.metrics.Alerts()} }
	hs[ops.OpAlertAck.Name] = a.acknowledgeAlert
	hs[ops.OpLogTail.Name] = a.logTail
	for _, more := range []map[string]handler{a.rateLimitHandlers(), a.settingsHandlers(), a.reservationHandlers(),
		a.messageHandlers(), a.channelHandlers(), a.goalHandlers(), a.scheduleHandlers()} {
		maps.Copy(hs, more)
	}
	return hs
}

// listCall filters the task list by the body: the NATS body, or the
// query string over HTTP.
func (a *API) listCall(ctx context.Context, c call) Reply {
	var q ListQuery
	if err := unmarshalOptional(c.body, &q); err != nil {
		return a.errorReply(ctx, badBody("the body must be a JSON object of status, priority, assigned_to, order strings and a limit"))
	}
	r := a.List(ctx, q)
	if agent, ok := c.agent(); ok && r.Status == http.StatusOK {
		r.Body = onlyConcerning(r.Body.(ops.TaskList), agent)
	}
	return r
}

// onlyConcerning keeps the tasks of a list that concern an agent.
func onlyConcerning(l ops.TaskList, agentID string) ops.TaskList {
	l.Tasks = slices.DeleteFunc(l.Tasks, func(t *domain.Task) bool { return !concerns(t, agentID) })
	l.Count = len(l.Tasks)
	return l
}

// getCall answers one task; to an agent, only one that concerns it.
func (a *API) getCall(ctx context.Context, c call) Reply {
	r := a.Get(ctx, c.params["id"])
	if agent, ok := c.agent(); ok && r.Status == http.StatusOK && !concerns(r.Body.(*domain.Task), agent) {
		return notYours("task " + c.params["id"])
	}
	return r
}

// agentsCall lists the agents; to an agent, itself alone.
func (a *API) agentsCall(_ context.Context, c call) Reply {
	r := a.Agents()
	if agent, ok := c.agent(); ok {
		l := r.Body.(ops.AgentList)
		l.Agents = slices.DeleteFunc(l.Agents, func(ag *domain.Agent) bool { return ag.ID != agent })
		l.Count = len(l.Agents)
		maps.DeleteFunc(l.LastSeen, func(id string, _ time.Time) bool { return id != agent })
		r.Body = l
	}
	return r
}

// agentCall answers one agent's state; an agent may read its own only.
func (a *API) agentCall(_ context.Context, c call) Reply {
	id := c.params["agent_id"]
	if agent, ok := c.agent(); ok && id != agent {
		return notYours("agent " + id)
	}
	return a.Agent(id)
}

// bind pairs every operation of table with its handler. An operation
// without one, or a handler without an operation, is an error: the
// transports serve exactly the table.
func bind(table []ops.Op, hs map[string]handler) ([]boundOp, error) {
	out := make([]boundOp, 0, len(table))
	seen := map[string]bool{}
	for _, o := range table {
		h, ok := hs[o.Name]
		if !ok || h == nil {
			return nil, fmt.Errorf("bind operation %s (%s): no handler", o.Name, o.Pattern())
		}
		if seen[o.Name] {
			return nil, fmt.Errorf("bind operation %s: declared twice", o.Name)
		}
		seen[o.Name] = true
		out = append(out, boundOp{o, h})
	}
	for name := range hs {
		if !seen[name] {
			return nil, fmt.Errorf("bind handler %s: no such operation in the table", name)
		}
	}
	return out, nil
}

// openAPIDoc is the document of the table, made once.
var openAPIDoc = sync.OnceValue(func() json.RawMessage {
	b, err := json.Marshal(ops.OpenAPI(buildVersion(), ops.All))
	if err != nil {
		panic(fmt.Sprintf("encode openapi document: %v", err)) // only plain maps and strings
	}
	return b
})

// schemasDoc is GET /api/schemas, made once.
var schemasDoc = sync.OnceValue(func() json.RawMessage {
	b, err := json.Marshal(ops.RequestSchemas(ops.All))
	if err != nil {
		panic(fmt.Sprintf("encode request schemas: %v", err)) // only plain maps and strings
	}
	return b
})

// buildVersion is the module version Go stamped into the binary.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// queryBody turns an HTTP query string into the JSON object of an op's
// Query type: each field named by its json tag, a number as a number, a
// time checked as RFC 3339.
func queryBody(t reflect.Type, q map[string][]string) ([]byte, error) {
	obj := map[string]any{}
	for _, f := range reflect.VisibleFields(t) {
		name := jsonName(f)
		vs, ok := q[name]
		if name == "" || !ok || len(vs) == 0 {
			continue
		}
		v, err := queryValue(f.Type, vs[0])
		if err != nil {
			return nil, fieldErr(name, "invalid", err.Error())
		}
		obj[name] = v
	}
	return json.Marshal(obj)
}

func queryValue(t reflect.Type, s string) (any, error) {
	switch {
	case t == reflect.TypeFor[time.Time]():
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, fmt.Errorf("want an RFC 3339 time, not %q", truncate(s, 64))
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a whole number, not %q", truncate(s, 64))
		}
		return n, nil
	}
	return s, nil
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}

// metricsText answers the Prometheus text exposition.
func (a *API) metricsText(ctx context.Context, _ call) Reply {
	text, err := a.metrics.Text()
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, ops.Text{ContentType: ops.TextFormat, Body: text}}
}

// acknowledgeAlert marks an active alert seen.
func (a *API) acknowledgeAlert(_ context.Context, c call) Reply {
	al, status, err := a.metrics.Acknowledge(c.params["rule"], c.who)
	switch status {
	case http.StatusNotFound:
		return Reply{status, ErrorBody{Error: "alert_not_found", Detail: err.Error()}}
	case http.StatusConflict:
		return Reply{status, ErrorBody{Error: "alert_not_active", Detail: err.Error()}}
	}
	return Reply{http.StatusOK, al}
}

// logTail answers the last lines of the log file.
func (a *API) logTail(ctx context.Context, c call) Reply {
	var q ops.LogTailQuery
	if err := unmarshalOptional(c.body, &q); err != nil {
		return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"lines": 100}`))
	}
	if q.Lines == 0 {
		q.Lines = 100
	}
	if q.Lines < 1 || q.Lines > 1000 {
		return a.errorReply(ctx, fieldErr("lines", "out_of_range", "lines must be between 1 and 1000"))
	}
	lines, err := logsink.Tail(a.logFile, q.Lines)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, ops.LogTail{File: a.logFile, Lines: lines}}
}
