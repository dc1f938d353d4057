package api

import (
	"github.com/nats-io/nats.go"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/limits"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/settings"
	"github.com/agentcom/agentcom/storeops"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/workflows"
	"github.com/agentcom/agentcom/writer"
)

// Reply is an API answer: an HTTP status code and a JSON body. NATS
// replies carry the same body, with the code in the Agentcom-Status header.
type Reply struct {
	Status int
	Body   any
}

// ErrorBody is the body of every error reply (declared with the
// operations, in protocol/ops).
type ErrorBody = ops.ErrorBody

// ListQuery filters a task list; empty fields match everything.
type ListQuery = ops.ListQuery

// API implements every hub request once, for both transports.
type API struct {
	svc    *writer.Service
	tasks  *projections.Tasks
	agents *projections.Agents
	now    func() time.Time
	log    logsink.Logger
	admin  *adminAPI
	tel    *telemetry.Emitter
	store  Store
	// refused summarises refused admin requests in the log.
	refused *refusals
	// table is what the transports serve (ops.All; tests change it);
	// commands are its operations by NATS command name (ServeNATS).
	table    []ops.Op
	commands map[string]boundOp
	// auth knows the tokens; openReads lets callers without one read
	// (HTTP on loopback, unless http.open_reads is false).
	auth      *broker.Authenticator
	openReads bool
	// lim and rl are the rate limits and where their overrides are kept.
	lim *limits.Limiter
	rl  *broker.RateLimitStore
	// settings are the run-time settings (agents.daily_budget_usd for
	// GET /api/usage, agents.default_repo for onboarding).
	settings *settings.Settings
	// httpURL is where onboarded agents find the HTTP API.
	httpURL string
	// operator does what an operator asks of agents (agents.Coordinator).
	operator Operator
	metrics  Metrics
	logFile  string
	// reservations are the agents' file reservations.
	reservations Reservations
	messages     Messages
	// idempotency keeps which task each idempotency key made (nil: keys
	// are not honoured).
	idempotency *broker.IdempotencyStore
	// goals and schedules are the workflows' (nil in tests that need none).
	goals     *workflows.Goals
	schedules *workflows.Schedules
	// streamsDone ends the live streams (StopStreams).
	streamsDone chan struct{}
	stopStreams sync.Once
}

// Operator is what the admin agent operations call.
type Operator interface {
	Reset(ctx context.Context, agentID string) (ops.AgentReset, error)
	LastSeen(agentID string) (time.Time, bool)
}

// Store is what the store operations call (storeops.Ops).
type Store interface {
	Compact(ctx context.Context) (storeops.CompactResult, error)
	StoreHealth(ctx context.Context) (storeops.StoreHealth, error)
	Backup(ctx context.Context) (broker.BackupFile, error)
	RequestRestore(name string) (string, error)
	Timeline(ctx context.Context, id string) ([]storeops.TimelineEntry, error)
}

// Params are the parts the API works with.
type Params struct {
	Writer    *writer.Service
	Views     *projections.Views
	Store     Store
	Tokens    *broker.TokenStore
	Server    *broker.Server
	Conn      *nats.Conn // the hub's own: it reads the kept telemetry
	Log       logsink.Logger
	Telemetry *telemetry.Emitter // nil: none
	// Table is what the transports serve; defaults to ops.All.
	Table []ops.Op
	// RefusalTimer replaces time.AfterFunc for the refused-requests
	// summary (tests step it by hand).
	RefusalTimer func(time.Duration, func())
	// Auth knows the tokens; OpenReads lets HTTP callers without a token
	// call Read operations.
	Auth      *broker.Authenticator
	OpenReads bool
	// Limiter and RateLimits rate-limit every caller but the admin.token
	// file's (nil: none).
	Limiter    *limits.Limiter
	RateLimits *broker.RateLimitStore
	// Settings are the run-time settings.
	Settings *settings.Settings
	// HTTPURL is the HTTP API's base URL, for onboarding's answer.
	HTTPURL string
	// Operator does the admin agent operations.
	Operator Operator
	// Metrics answers /metrics and /api/metrics.
	Metrics Metrics
	// LogFile is the log sink's file, for log.tail.
	LogFile string
	// Reservations are the agents' file reservations.
	Reservations Reservations
	// Messages are the agents' and operators' messages.
	Messages Messages
	// Idempotency keeps the submits' idempotency keys.
	Idempotency *broker.IdempotencyStore
	// Goals and Schedules are the goals and the periodic schedules.
	Goals     *workflows.Goals
	Schedules *workflows.Schedules
}

// Metrics is what the metrics operations read (metrics.Metrics).
type Metrics interface {
	Text() (string, error)
	Snapshot(ctx context.Context) ops.MetricsSnapshot
	Alerts() ops.Alerts
	Acknowledge(rule, by string) (ops.Alert, int, error)
}

// New returns the API over the writer, the projections and the store.
func New(p Params) *API {
	if p.Table == nil {
		p.Table = ops.All
	}
	refused := newRefusals(p.Log.Module("http"))
	if p.RefusalTimer != nil {
		refused.after = p.RefusalTimer
	}
	return &API{svc: p.Writer, tasks: p.Views.Tasks, agents: p.Views.Agents, now: time.Now, log: p.Log.Module("api"),
		refused: refused, table: p.Table, tel: p.Telemetry, store: p.Store, auth: p.Auth, openReads: p.OpenReads,
		lim: p.Limiter, rl: p.RateLimits, settings: p.Settings, operator: p.Operator, httpURL: p.HTTPURL, metrics: p.Metrics, logFile: p.LogFile, reservations: p.Reservations, messages: p.Messages, idempotency: p.Idempotency, goals: p.Goals, schedules: p.Schedules,
		admin: &adminAPI{tokens: p.Tokens, srv: p.Server, nc: p.Conn}, streamsDone: make(chan struct{})}
}

// Stop logs what the refused-requests summary still holds, once the HTTP
// server has stopped.
func (a *API) Stop() { a.refused.stop() }

// Submit creates a task from a JSON body.
func (a *API) Submit(ctx context.Context, who string, body []byte) Reply {
	ctx = logsink.Traced(ctx) // the answer tells its own task from an earlier submit's by it
	cmd, err := decodeSubmit(body, a.now())
	if err != nil {
		return a.errorReply(ctx, err)
	}
	t, err := a.submit(ctx, who, cmd)
	if err != nil {
		return a.goalError(ctx, err)
	}
	return submittedReply(ctx, t)
}

// submit stores a decoded submit under its id (prepare), and logs it.
func (a *API) submit(ctx context.Context, who string, cmd domain.SubmitTask) (*domain.Task, error) {
	if err := a.prepare(ctx, who, &cmd, 0, nil); err != nil {
		return nil, err
	}
	t, err := a.svc.Execute(ctx, cmd)
	if err != nil {
		return nil, err
	}
	a.log.Ctx(ctx).Info().Str("task_id", t.ID).Str("priority", t.Priority.String()).
		Bool("duplicate", duplicate(ctx, t)).Msg("task submitted")
	return t, nil
}

// submitted is a submit's answer.
func submitted(ctx context.Context, t *domain.Task) ops.Submitted {
	return ops.Submitted{Status: t.Status, TaskID: t.ID, Priority: t.Priority, CreatedAt: t.CreatedAt,
		Duplicate: duplicate(ctx, t)}
}

// submittedReply is 201 with the task, or 200 when an earlier submit
// made it (the same idempotency key).
func submittedReply(ctx context.Context, t *domain.Task) Reply {
	s := submitted(ctx, t)
	if s.Duplicate {
		return Reply{http.StatusOK, s}
	}
	return Reply{http.StatusCreated, s}
}

// List returns tasks in queue order (priority, then age).
func (a *API) List(ctx context.Context, q ListQuery) Reply {
	f, err := parseFilter(q)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	tasks := a.tasks.List(f)
	if q.Order == "updated" {
		slices.SortStableFunc(tasks, func(x, y *domain.Task) int { return y.UpdatedAt.Compare(x.UpdatedAt) })
	}
	if q.Limit > 0 && len(tasks) > q.Limit {
		tasks = tasks[:q.Limit]
	}
	return taskList(tasks)
}

func parseFilter(q ListQuery) (projections.Filter, error) {
	v := &domain.ValidationError{}
	f := projections.Filter{AssignedTo: q.AssignedTo}
	if q.Status != "" {
		st, ok := domain.ParseStatus(q.Status)
		if !ok {
			v.Add("status", "invalid", fmt.Sprintf("unknown status %q: use one of %v", q.Status, domain.Statuses))
		}
		f.Status = st
	}
	if q.Priority != "" {
		p, ok := domain.ParsePriority(q.Priority)
		if !ok {
			v.Add("priority", "invalid", fmt.Sprintf("unknown priority %q: use urgent, high, normal or low", q.Priority))
		}
		f.Priority = &p
	}
	if q.Order != "" && q.Order != "queue" && q.Order != "updated" {
		v.Add("order", "invalid", fmt.Sprintf("unknown order %q: use queue or updated", q.Order))
	}
	if q.Limit < 0 {
		v.Add("limit", "out_of_range", "limit must not be negative (0: all)")
	}
	return f, v.Err()
}

func taskList(ts []*domain.Task) Reply {
	if ts == nil {
		ts = []*domain.Task{}
	}
	return Reply{http.StatusOK, ops.TaskList{Tasks: ts, Count: len(ts)}}
}

// Get returns one task.
func (a *API) Get(ctx context.Context, id string) Reply {
	t, _, ok := a.tasks.Get(id)
	if !ok {
		return a.errorReply(ctx, &domain.NotFoundError{TaskID: id})
	}
	return Reply{http.StatusOK, t}
}

// Health reports whether the hub takes commands.
func (a *API) Health() Reply {
	err := a.svc.Loss()
	if err == nil {
		err = a.svc.Err()
	}
	if err != nil {
		return Reply{http.StatusServiceUnavailable, ops.Health{
			Status: "unhealthy", Service: "agentcom", Error: err.Error(), LastSeq: a.tasks.LastSeq(),
		}}
	}
	if err := a.svc.StoreFull(); err != nil {
		return Reply{http.StatusServiceUnavailable, ops.Health{
			Status: "unhealthy", Service: "agentcom", Error: protocol.CodeStoreFull, Detail: err.Error(),
			LastSeq: a.tasks.LastSeq(),
		}}
	}
	return Reply{http.StatusOK, ops.Health{Status: "ok", Service: "agentcom", LastSeq: a.tasks.LastSeq()}}
}

// Stats returns task counts.
func (a *API) Stats() Reply { return Reply{http.StatusOK, a.tasks.Stats()} }

// DeadLetter lists dead-lettered tasks.
func (a *API) DeadLetter() Reply { return taskList(a.tasks.DeadLetter()) }

// Retry brings a dead-lettered task back to the queue.
func (a *API) Retry(ctx context.Context, who, id string) Reply {
	t, err := a.run(ctx, domain.RetryTask{ID: id, By: who})
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, ops.Retried{Status: "requeued", TaskID: t.ID, Priority: t.Priority}}
}

// Cancel ends a task; the body may give {"reason": "..."}.
func (a *API) Cancel(ctx context.Context, who, id string, body []byte) Reply {
	var req ops.CancelRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return a.errorReply(ctx, badBody("reason must be a string in a JSON object"))
		}
	}
	t, err := a.run(ctx, domain.CancelTask{ID: id, By: who, Reason: req.Reason})
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, ops.Cancelled{Status: t.Status, TaskID: t.ID}}
}

func (a *API) run(ctx context.Context, cmd domain.Command) (*domain.Task, error) {
	if !domain.ValidTaskID(cmd.TaskID()) {
		return nil, &domain.NotFoundError{TaskID: cmd.TaskID()}
	}
	return a.svc.Execute(ctx, cmd)
}

func badBody(detail string) error { return fieldErr("body", "invalid_json", detail) }

// errorReply maps an error to its status code and body.
func (a *API) errorReply(ctx context.Context, err error) Reply {
	var ve *domain.ValidationError
	var nf *domain.NotFoundError
	switch {
	case errors.As(err, &ve):
		return Reply{http.StatusUnprocessableEntity, ErrorBody{Error: protocol.CodeValidationFailed, Errors: ve.Fields}}
	case errors.As(err, &nf):
		return Reply{http.StatusNotFound, ErrorBody{Error: "task_not_found", TaskID: nf.TaskID}}
	case errors.Is(err, domain.ErrInvalidState):
		return Reply{http.StatusConflict, ErrorBody{Error: protocol.CodeInvalidState, Detail: err.Error()}}
	case errors.Is(err, domain.ErrStaleGeneration):
		return Reply{http.StatusConflict, ErrorBody{Error: protocol.CodeStaleGeneration, Detail: err.Error()}}
	case errors.Is(err, domain.ErrWrongAgent):
		return Reply{http.StatusConflict, ErrorBody{Error: protocol.CodeWrongAgent, Detail: err.Error()}}
	case errors.Is(err, broker.ErrConflict):
		return Reply{http.StatusConflict, ErrorBody{Error: "conflict", Detail: "the task changed while the command was decided; read it and try again"}}
	case errors.Is(err, broker.ErrStoreFull):
		return Reply{http.StatusInsufficientStorage, ErrorBody{Error: protocol.CodeStoreFull, Detail: err.Error() +
			"; nothing was stored; the hub takes writes again once space returns"}}
	case errors.Is(err, writer.ErrStopped):
		return Reply{http.StatusServiceUnavailable, ErrorBody{Error: "shutting_down", Detail: err.Error()}}
	case errors.Is(err, writer.ErrStoreLoss):
		return Reply{http.StatusServiceUnavailable, ErrorBody{Error: "store_loss", Detail: err.Error()}}
	case errors.Is(err, writer.ErrUnavailable):
		return Reply{http.StatusServiceUnavailable, ErrorBody{Error: protocol.CodeUnavailable, Detail: err.Error()}}
	case errors.Is(err, writer.ErrUnknownOutcome), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		a.log.Ctx(ctx).Warning().Err(err).Msg("command outcome unknown")
		return Reply{http.StatusServiceUnavailable, ErrorBody{Error: "outcome_unknown",
			Detail: "the command may or may not have taken effect; read the task before sending it again"}}
	}
	a.log.Ctx(ctx).Error().Err(err).Msg("request failed")
	return Reply{http.StatusInternalServerError, ErrorBody{Error: "internal", Detail: "the hub could not complete the request; see its log"}}
}
