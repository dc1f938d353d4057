package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/telemetry"
)

// shutdownTimeout bounds how long Stop waits, in all, for HTTP requests in
// flight, commands in flight and the log lines to be stored.
const shutdownTimeout = 15 * time.Second

// fullStoreLogWait bounds the wait for log lines at a stop while the
// store is full: the LOGS stream may never take them.
const fullStoreLogWait = time.Second

// Hub is a running AgentCom hub: broker, projections, command service and
// both APIs.
type Hub struct {
	cfg config.Hub
	log logsink.Logger

	unlock  func()
	auth    *broker.Authenticator
	srv     *broker.Server
	nc      *nats.Conn
	telNC   *nats.Conn
	store   *broker.EventStore
	views   *projections.Views
	svc     *Service
	api     *API
	natsAPI *NATSServer
	coord   *Coordinator
	tokens  *broker.TokenStore
	tel     *telemetry.Emitter
	out     *logsink.Output
	pub     *logsink.Publisher
	sink    *logsink.Sink
	js      jetstream.JetStream
	ops     storeOps
	plan    storePlan // the store's space, sized to the volume at start
	started time.Time
	now     func() time.Time // the clock of store operations, commands and the scheduler
	// pauseScheduler starts the scheduler paused (tests that assign by hand).
	pauseScheduler bool
	// backupPoll is how often the backup schedule looks at the clock.
	backupPoll time.Duration
	quit       chan struct{}
	life       context.Context // ends at Stop: background jobs run within it
	endLife    context.CancelFunc
	jobs       sync.WaitGroup
	restore    chan string  // backups to restore, for the process running the hub
	httpL      net.Listener // taken at the start of Start, served at its end
	http       *http.Server
	httpURL    string

	stopOnce sync.Once
}

// New returns a hub that Start will run.
// out, if not nil, is the log output the hub extends with the LOGS stream
// while it runs.
func New(cfg config.Hub, log logsink.Logger, out *logsink.Output) *Hub {
	life, endLife := context.WithCancel(context.Background())
	return &Hub{cfg: cfg, log: log.Module("hub"), out: out, quit: make(chan struct{}), now: time.Now,
		backupPoll: backupPoll, restore: make(chan string, 1), life: life, endLife: endLife}
}

// Start brings the hub up in order: lock the data directory, start NATS,
// open the store and tokens, rebuild projections from the stream, then
// take commands over NATS and HTTP. ctx bounds the start; the hub then
// runs until Stop. On error everything started is stopped again.
func (h *Hub) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			h.Stop()
		}
	}()
	if h.unlock, err = broker.LockDataDir(h.cfg.DataDir); err != nil {
		return err
	}
	if h.plan, err = planStore(h.cfg); err != nil {
		return err
	}
	if err = h.listenHTTP(); err != nil {
		return err
	}
	if err = h.startBroker(ctx); err != nil {
		return err
	}
	if err = h.startLogs(ctx); err != nil {
		return err
	}
	if err = h.startTelemetry(ctx); err != nil {
		return err
	}
	if err = h.rebuild(ctx); err != nil {
		return err
	}
	h.enforceLoss()
	h.saveMark(ctx)
	h.every(time.Second, h.saveMark)
	h.every(lossCheckInterval, h.watchLoss)
	h.coord = NewCoordinator(CoordinatorParams{Service: h.svc, Views: h.views, Conn: h.nc, Server: h.srv,
		Config: h.cfg.Agents, Backoff: h.cfg.Tasks.Backoff(), Log: h.log, Telemetry: h.tel, Now: h.now})
	applied := h.coord.applied
	if h.tel != nil { // with telemetry off, the applier builds no events
		t := &tap{tel: h.tel, views: h.views}
		h.views.Agents.Observe(t.transition)
		applied = func(envs []domain.Envelope) {
			t.applied(envs) // first: the scheduler's own events follow these
			h.coord.applied(envs)
		}
	}
	h.svc.OnApplied(applied)
	h.coord.sched.paused.Store(h.pauseScheduler)
	h.auth.SetAgentGate(h.coord.refused)
	if err = h.coord.Start(ctx); err != nil {
		return err
	}
	h.api = NewAPI(h.svc, h.views, h.log)
	h.api.tel = h.tel
	h.api.store = h
	h.api.admin = &adminAPI{tokens: h.tokens, srv: h.srv, nc: h.nc}
	if h.natsAPI, err = h.api.ServeNATS(h.nc); err != nil {
		return err
	}
	if err = h.serveHTTP(); err != nil {
		return err
	}
	if err = h.planBackups(ctx); err != nil {
		return err
	}
	h.started = time.Now()
	h.watchStore()
	h.every(h.cfg.Store.CompactionInterval, func(ctx context.Context) { _, _ = h.Compact(ctx) })
	h.log.Info().Str("nats_url", h.NATSURL()).Str("http_url", h.httpURL).
		Str("data_dir", h.cfg.DataDir).Str("sync", h.cfg.Store.Sync).
		Int64("store_max_mb", h.plan.maxStore/mib).Int64("logs_stream_mb", h.plan.logs/mib).
		Int64("telemetry_stream_mb", h.plan.telemetry/mib).Msg("hub ready")
	return nil
}

func (h *Hub) startBroker(ctx context.Context) error {
	h.auth = broker.NewAuthenticator()
	srv, err := broker.StartServer(broker.ServerConfig{
		Listen: h.cfg.NATS.Listen, DataDir: h.cfg.DataDir, SyncInterval: h.cfg.Store.SyncInterval,
		MaxStore: h.plan.maxStore, Auth: h.auth, Log: h.log,
	})
	if err != nil {
		return err
	}
	h.srv = srv
	if h.nc, err = srv.ConnectInProcess(h.auth.HubSecret(), "agentcom-hub"); err != nil {
		return err
	}
	if h.store, err = broker.OpenEventStore(ctx, h.nc); err != nil {
		return err
	}
	if h.js, err = jetstream.New(h.nc); err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	if err = h.checkLoss(ctx); err != nil {
		return err
	}
	if h.tokens, err = broker.OpenTokens(ctx, h.nc, h.auth); err != nil {
		return err
	}
	created, err := h.tokens.EnsureAdmin(ctx, h.cfg.DataDir)
	if err != nil {
		return err
	}
	if created {
		h.log.Notice().Str("path", h.AdminTokenPath()).Msg("admin token written")
	}
	return nil
}

// startTelemetry opens the TELEMETRY stream and the emitter (unless
// telemetry is off), and lets anonymous observers in where configured.
func (h *Hub) startTelemetry(ctx context.Context) error {
	h.auth.AllowObserver(h.cfg.Telemetry.Enabled && h.cfg.ObserverAllowed())
	if !h.cfg.Telemetry.Enabled {
		return nil
	}
	if err := broker.OpenTelemetry(ctx, h.nc, h.cfg.Telemetry.MaxAge, h.plan.telemetry); err != nil {
		return err
	}
	// A connection of its own: on the hub's, a burst of telemetry would
	// queue ahead of appends and replies, which the server reads in order.
	nc, err := h.srv.ConnectInProcess(h.auth.HubSecret(), "agentcom-telemetry")
	if err != nil {
		return err
	}
	h.telNC = nc
	h.tel = telemetry.New(nc, logsink.Hostname(), h.log, telemetry.PublishWhenWatched(h.srv.Watched))
	return nil
}

// rebuild brings the projections up to the stream's end, as a span: from
// the snapshot when it is usable (only the events after it are replayed),
// else from the start. Then it snapshots every store.snapshot_interval.
func (h *Hub) rebuild(ctx context.Context) error {
	start := time.Now()
	views, from := h.snapshotViews(ctx)
	return h.tel.Span("projection.rebuild", nil, func() (map[string]any, error) {
		err := h.startViews(ctx, views)
		if err != nil && from > 0 {
			h.snapshotDiscarded(fmt.Sprintf("the events after it do not apply: %v", err))
			from = 0
			err = h.startViews(ctx, projections.NewViews())
		}
		if err != nil {
			return nil, err
		}
		if loss := h.svc.Loss(); loss != nil {
			h.lost(loss.Error())
		}
		last := h.views.LastSeq()
		if from > 0 {
			h.snapshotLoaded(from, last, time.Since(start))
		}
		h.log.Info().Uint64("last_seq", last).Uint64("events", last-from).Int("tasks", h.views.Tasks.Stats().Total).
			Dur("duration_ms", time.Since(start)).Msg("projections rebuilt")
		if h.cfg.Store.SnapshotInterval > 0 {
			h.every(h.cfg.Store.SnapshotInterval, func(ctx context.Context) { _ = h.saveSnapshot(ctx) })
		}
		return map[string]any{"last_seq": last, "events": last - from}, nil
	})
}

// listenHTTP takes the HTTP address first, so that an address in use
// fails the start at once, before the store is opened and replayed.
func (h *Hub) listenHTTP() error {
	l, err := net.Listen("tcp", h.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen http on %s (http.listen): %w", h.cfg.HTTP.Listen, err)
	}
	h.httpL = l
	h.httpURL = "http://" + l.Addr().String()
	return nil
}

// serveHTTP serves the API on the listener listenHTTP took.
func (h *Hub) serveHTTP() error {
	l := h.httpL
	handler, err := h.api.HTTPHandler(h.auth)
	if err != nil {
		return err
	}
	h.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: stdlog.New(logsink.LineWriter(h.log.Module("http"), "http server"), "", 0)}
	go func() {
		if err := h.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error().Err(err).Msg("http server stopped")
		}
	}()
	return nil
}

// Stop shuts down in order: stop intake (HTTP, then the NATS command
// subscription, waiting for requests in flight), finish the commands the
// service already took, close the hub's connection, stop NATS last, and
// release the data directory. Safe to call twice and after a failed Start
// (which logs no "hub stopped": the hub never ran).
func (h *Hub) Stop() {
	h.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if h.http != nil {
			_ = h.http.Shutdown(ctx)
		} else if h.httpL != nil {
			_ = h.httpL.Close() // a failed start: taken, never served
		}
		if h.api != nil {
			h.api.refused.stop()
		}
		close(h.quit)
		h.endLife()
		h.jobs.Wait()
		if h.natsAPI != nil {
			h.natsAPI.Stop(ctx)
		}
		if h.coord != nil {
			h.coord.Stop()
		}
		if h.svc != nil {
			h.svc.Stop()
			h.saveSnapshotAtStop(ctx)
			if h.svc.started.Load() {
				h.saveMark(ctx)
			}
		}
		h.tel.Stop()
		if h.telNC != nil {
			h.telNC.Close()
		}
		if !h.started.IsZero() { // a failed start is reported by its error
			h.log.Info().Msg("hub stopped")
		}
		fallback := h.stopLogs(ctx)
		if h.nc != nil {
			h.nc.Close()
		}
		if h.srv != nil {
			h.srv.Shutdown()
		}
		if h.unlock != nil {
			h.unlock()
		}
		if h.out != nil {
			h.out.Attach(nil)
		}
		if fallback != nil {
			_ = fallback.Close()
		}
	})
}

// logFile is the log sink's file settings.
func (h *Hub) logFile() logsink.SinkConfig {
	return logsink.SinkConfig{Dir: filepath.Join(h.cfg.DataDir, "logs"), MaxSizeMB: h.cfg.Log.MaxSizeMB,
		MaxBackups: h.cfg.Log.MaxBackups}
}

// startLogs publishes every log line to the LOGS stream and starts the
// sink that writes them, and the sidecars' lines, to rotated files.
func (h *Hub) startLogs(ctx context.Context) error {
	stream, err := broker.OpenLogs(ctx, h.nc, h.plan.logs)
	if err != nil {
		return err
	}
	sink := logsink.NewSink(stream, h.logFile())
	// The sink runs until Stop, not until ctx ends: ctx is often the
	// signal that asks for a shutdown, whose own lines must reach the file.
	if err := sink.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start log sink: %w", err)
	}
	h.sink = sink
	h.pub = logsink.NewPublisher(h.nc, broker.LogHub(logsink.Hostname()))
	if h.out != nil {
		h.out.Attach(h.pub)
	}
	return nil
}

// stopLogs lets the sink write everything logged so far (within what is
// left of the shutdown's ctx; briefly on a full store, which may not take
// the lines at all), then sends what is logged after (the last words of
// NATS) straight to the file. It returns that file, for the caller to
// close at the very end.
func (h *Hub) stopLogs(ctx context.Context) io.Closer {
	if h.sink == nil || h.pub == nil {
		return nil
	}
	wait := shutdownTimeout
	if h.store != nil && h.store.Full() != nil {
		wait = fullStoreLogWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_ = h.pub.Stored(ctx) // the sink stops at the stream's end: let it hold every line
	h.sink.StopBy(ctx)
	file := h.logFile().Writer()
	_ = h.pub.Close(file)
	return file
}

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
