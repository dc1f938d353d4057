package hub

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/agents"
	"github.com/agentcom/agentcom/api"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/lifecycle"
	"github.com/agentcom/agentcom/limits"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/messaging"
	"github.com/agentcom/agentcom/metrics"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/reservations"
	"github.com/agentcom/agentcom/settings"
	"github.com/agentcom/agentcom/storeops"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/workflows"
	"github.com/agentcom/agentcom/writer"
)

// shutdownTimeout bounds how long Stop waits, in all, for HTTP requests in
// flight, commands in flight and the log lines to be stored.
const shutdownTimeout = 15 * time.Second

// fullStoreLogWait bounds the wait for log lines at a stop while the
// store is full: the LOGS stream may never take them.
const fullStoreLogWait = time.Second

// Hub is a running AgentCom hub: broker, projections, writer, agent
// coordinator, store operations and both APIs, started in one declared
// order (Start) and stopped in reverse (Stop).
type Hub struct {
	cfg    config.Hub
	log    logsink.Logger
	out    *logsink.Output
	now    func() time.Time // the clock of store operations, commands and the scheduler
	params Params
	parts  lifecycle.Stack

	unlock  func()
	auth    *broker.Authenticator
	srv     *broker.Server
	nc      *nats.Conn
	telNC   *nats.Conn
	store   *broker.EventStore
	views   *projections.Views
	svc     *writer.Service
	ops     *storeops.Ops
	api     *api.API
	natsAPI *api.NATSServer
	coord   *agents.Coordinator
	tokens  *broker.TokenStore
	// limiter rate-limits callers; rateLimits keeps its overrides.
	limiter    *limits.Limiter
	rateLimits *broker.RateLimitStore
	// reservationStore keeps the file reservations; reservations change them.
	reservationStore *broker.ReservationStore
	reservations     *reservations.Service
	// messageStore keeps the messages; messages send and read them.
	messageStore *broker.MessageStore
	messages     *messaging.Service
	// idempotency keeps the submits' idempotency keys; releaser settles
	// waiting tasks as their dependencies do.
	idempotency *broker.IdempotencyStore
	releaser    *workflows.Releaser
	goals       *workflows.Goals
	schedules   *workflows.Schedules
	// settings are the configuration in force: the file's, with the
	// run-time changes laid over it.
	settings *settings.Settings
	// metrics feed /metrics and /api/metrics; stopSampling ends their
	// minute samples.
	metrics      *metrics.Metrics
	stopSampling context.CancelFunc
	tel          *telemetry.Emitter
	pub          *logsink.Publisher
	sink         *logsink.Sink
	fallback     io.Closer // the log file the last lines go to at a stop
	plan         storeops.Plan
	started      time.Time
	httpL        net.Listener // taken at the start of Start, served at its end
	http         *http.Server
	httpURL      string
}

// Params are what a hub is built from.
type Params struct {
	Config config.Hub
	Log    logsink.Logger
	// Out, if not nil, is the log output the hub extends with the LOGS
	// stream while it runs.
	Out *logsink.Output
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// PauseScheduler starts the scheduler paused (tests that assign by hand).
	PauseScheduler bool
	// RefusalTimer replaces time.AfterFunc for the refused-requests
	// summary (tests step it by hand).
	RefusalTimer func(time.Duration, func())
	// SchedulePoll is how often the periodic schedules look at the clock
	// (default workflows.DefaultPoll).
	SchedulePoll time.Duration
	// BackupPoll is how often the backup schedule looks at the clock
	// (default storeops.DefaultBackupPoll).
	BackupPoll time.Duration
}

// New returns a hub that Start will run.
func New(p Params) *Hub {
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Hub{cfg: p.Config, log: p.Log.Module("hub"), out: p.Out, now: p.Now, params: p}
}

// Start brings the hub up in order (steps): lock the data directory, take
// the HTTP address, start NATS, open the store and tokens, the logs and
// telemetry, rebuild the projections and start the writer, then the store
// upkeep, the agent coordinator, the NATS commands and HTTP. ctx bounds
// the start; the hub then runs until Stop. On error everything started is
// stopped again, in reverse.
func (h *Hub) Start(ctx context.Context) error {
	if err := h.parts.Start(ctx, h.steps()...); err != nil {
		h.Stop()
		return err
	}
	h.started = time.Now()
	h.log.Info().Str("nats_url", h.NATSURL()).Str("http_url", h.httpURL).Str("monitor_url", h.srv.MonitorURL()).
		Str("data_dir", h.cfg.DataDir).Str("sync", h.cfg.Store.Sync).
		Int64("store_max_mb", h.plan.MaxStore>>20).Int64("logs_stream_mb", h.plan.Logs>>20).
		Int64("telemetry_stream_mb", h.plan.Telemetry>>20).Msg("hub ready")
	return nil
}

// steps are the hub's parts in start order; Stop runs their stops in
// reverse, so each part stops before what it uses.
func (h *Hub) steps() []lifecycle.Step {
	return []lifecycle.Step{
		{Name: "log fallback", Stop: h.closeFallback},
		{Name: "data dir", Start: h.lockDataDir, Stop: func(context.Context) { h.unlock() }},
		{Name: "http listener", Start: h.listenHTTP, Stop: func(context.Context) { _ = h.httpL.Close() }},
		{Name: "broker", Start: h.startBroker, Stop: h.stopBroker},
		{Name: "store", Start: h.openStore},
		{Name: "logs", Start: h.startLogs, Stop: h.stopLogs},
		{Name: "telemetry", Start: h.startTelemetry, Stop: h.stopTelemetry},
		{Name: "announce", Stop: h.announceStop},
		{Name: "projections", Start: h.rebuild, Stop: h.stopWriter},
		{Name: "store upkeep", Start: func(ctx context.Context) error { return h.ops.Start(ctx) },
			Stop: func(context.Context) { h.ops.Stop() }},
		{Name: "settings", Start: h.loadSettings},
		{Name: "agents", Start: h.startAgents, Stop: h.stopAgents},
		{Name: "metrics", Start: h.startMetrics, Stop: h.stopMetrics},
		{Name: "nats api", Start: h.serveNATS, Stop: func(ctx context.Context) { h.natsAPI.Stop(ctx) }},
		{Name: "http api", Start: h.serveHTTP, Stop: h.stopHTTP},
	}
}

// Stop shuts down in the reverse of the start order: HTTP, the NATS
// commands (waiting for requests in flight), the coordinator, the store
// upkeep, the writer (finishing the commands it took, then the snapshot
// and mark), telemetry, the log sink, NATS, and the data directory. It
// is bounded by shutdownTimeout in all. Safe to call twice and after a
// failed Start (which logs no "hub stopped": the hub never ran).
func (h *Hub) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	h.parts.Stop(ctx)
}

func (h *Hub) lockDataDir(context.Context) (err error) {
	if h.unlock, err = broker.LockDataDir(h.cfg.DataDir); err != nil {
		return err
	}
	h.plan, err = storeops.PlanStore(h.cfg)
	return err
}

// rebuild opens the store operations, which bring the projections up to
// the stream's end and start the writer on them.
func (h *Hub) rebuild(ctx context.Context) (err error) {
	h.ops, err = storeops.New(storeops.Params{Config: h.cfg, Plan: h.plan, Store: h.store, Server: h.srv, Conn: h.nc,
		Log: h.log, Telemetry: h.tel, Now: h.now, BackupPoll: h.params.BackupPoll})
	if err != nil {
		return err
	}
	err = h.ops.Rebuild(ctx)
	h.views, h.svc = h.ops.Views(), h.ops.Writer()
	return err
}

// stopWriter finishes the commands the writer took, then saves the
// snapshot and the store mark.
func (h *Hub) stopWriter(ctx context.Context) {
	if h.svc != nil {
		h.svc.Stop()
	}
	h.ops.SaveAtStop(ctx)
}

// loadSettings lays the run-time changes of settings over the file's.
func (h *Hub) loadSettings(ctx context.Context) error {
	h.settings = settings.New(settings.Params{Store: h.store, Config: h.cfg, Log: h.log, Telemetry: h.tel, Now: h.now})
	h.settings.Load(ctx)
	return nil
}

// startAgents starts the coordinator, fed by the writer's applied groups
// (after the telemetry tap, so the scheduler's own events follow them).
func (h *Hub) startAgents(ctx context.Context) error {
	h.reservations = reservations.New(h.reservationStore, h.log, h.tel, h.now)
	if err := h.reservations.Load(ctx); err != nil {
		return err
	}
	h.messages = messaging.New(messaging.Params{Store: h.messageStore, Conn: h.nc, Online: h.onlineAgents, IsOnline: h.isOnline,
		Mailbox: h.cfg.Messages.Mailbox, Log: h.log, Telemetry: h.tel, Now: h.now})
	if err := h.messages.Load(ctx); err != nil {
		return err
	}
	h.coord = agents.New(agents.Params{Service: h.svc, Views: h.views, Conn: h.nc, Server: h.srv, Reservations: h.reservations, Messages: h.messages,
		Config: h.settings.Current().Agents, Backoff: h.cfg.Tasks.Backoff(), Log: h.log, Telemetry: h.tel, Now: h.now,
		Paused: h.params.PauseScheduler})
	if err := h.startWorkflows(ctx); err != nil {
		return err
	}
	applied := func(g writer.Applied) {
		h.coord.Applied(g)
		h.releaser.Applied(g)
		h.goals.Applied(g)
	}
	if h.tel != nil { // with telemetry off, the applier builds no events
		t := &tap{tel: h.tel}
		h.views.Agents.Observe(t.transition)
		inner := applied
		applied = func(g writer.Applied) {
			t.applied(g)
			inner(g)
		}
	}
	h.svc.OnApplied(applied)
	h.settings.Watch(func(cfg config.Hub) { h.coord.SetConfig(cfg.Agents) })
	if err := h.coord.Start(ctx); err != nil {
		h.stopAgents(ctx) // the step failed: close what it opened (lanes, the workflows' loops)
		return err
	}
	h.releaser.Start()
	return nil
}

// startWorkflows reads the goals and schedules; the releaser starts
// with the coordinator.
func (h *Hub) startWorkflows(ctx context.Context) error {
	p := workflows.Params{Store: h.store, Writer: h.svc, Tasks: h.views.Tasks, Log: h.log, Telemetry: h.tel, Now: h.now}
	h.releaser = workflows.NewReleaser(h.svc, h.views.Tasks, h.log)
	h.goals = workflows.NewGoals(p)
	if err := h.goals.Load(ctx); err != nil {
		return err
	}
	h.schedules = workflows.NewSchedules(p, api.DecodeSubmit, h.goals, h.params.SchedulePoll)
	return h.schedules.Load(ctx)
}

// stopAgents stops the schedules, goals and releaser, then the
// coordinator.
func (h *Hub) stopAgents(context.Context) {
	if h.schedules != nil {
		h.schedules.Stop()
	}
	if h.goals != nil {
		h.goals.Stop()
	}
	if h.releaser != nil {
		h.releaser.Stop()
	}
	h.coord.Stop()
}

// isOnline reports whether an agent is connected.
func (h *Hub) isOnline(agentID string) bool {
	a, _, ok := h.views.Agents.Get(agentID)
	return ok && a.Online()
}

// onlineAgents are the connected agents' ids.
func (h *Hub) onlineAgents() []string {
	var out []string
	for _, a := range h.views.Agents.List() {
		if a.Online() {
			out = append(out, a.ID)
		}
	}
	return out
}

// serveNATS takes hub commands over NATS.
func (h *Hub) serveNATS(context.Context) (err error) {
	h.api = api.New(api.Params{Writer: h.svc, Views: h.views, Store: h.ops, Tokens: h.tokens, Server: h.srv,
		Conn: h.nc, Log: h.log, Telemetry: h.tel, RefusalTimer: h.params.RefusalTimer,
		Auth: h.auth, OpenReads: h.cfg.OpenReads(), Limiter: h.limiter, RateLimits: h.rateLimits,
		Settings: h.settings, HTTPURL: h.httpURL, Operator: h.coord, Metrics: h.metrics,
		LogFile: filepath.Join(h.logFile().Dir, logsink.LogFileName), Reservations: h.reservations,
		Messages: h.messages, Idempotency: h.idempotency, Goals: h.goals, Schedules: h.schedules})
	h.natsAPI, err = h.api.ServeNATS(h.nc)
	return err
}

// announceStop logs "hub stopped" once every part above it has stopped,
// while the log sink still runs; a hub that never started says nothing.
func (h *Hub) announceStop(context.Context) {
	if !h.started.IsZero() {
		h.log.Info().Msg("hub stopped")
	}
}

// MonitorURL is the NATS monitoring port's URL ("" when nats.monitor is off).
func (h *Hub) MonitorURL() string { return h.srv.MonitorURL() }

// NATSURL is the URL clients connect to.
func (h *Hub) NATSURL() string { return h.srv.ClientURL() }

// HTTPURL is the base URL of the HTTP API.
func (h *Hub) HTTPURL() string { return h.httpURL }

// AdminTokenPath is the file holding the admin token.
func (h *Hub) AdminTokenPath() string { return filepath.Join(h.cfg.DataDir, broker.AdminTokenFile) }

// Tasks is the task projection (read-only use).
func (h *Hub) Tasks() *projections.Tasks { return h.views.Tasks }

// Agents is the agent projection (read-only use).
func (h *Hub) Agents() *projections.Agents { return h.views.Agents }

// Store is the event store.
func (h *Hub) Store() *broker.EventStore { return h.store }

// Restarts delivers the backup files the hub was asked to restore: the
// process running the hub stops it, restores and starts it again.
func (h *Hub) Restarts() <-chan string { return h.ops.Restarts() }
