package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/limits"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/telemetry"
)

// The parts of the hub that Start's steps bring up and take down.

// startBroker starts the embedded NATS server and the hub's own
// in-process connection.
func (h *Hub) startBroker(context.Context) (err error) {
	h.auth = broker.NewAuthenticator()
	h.srv, err = broker.StartServer(broker.ServerConfig{
		Listen: h.cfg.NATS.Listen, DataDir: h.cfg.DataDir, SyncInterval: h.cfg.Store.SyncInterval,
		MaxStore: h.plan.MaxStore, Auth: h.auth, Log: h.log, TLS: tlsFiles(h.cfg.NATS.TLS), Monitor: h.cfg.NATS.Monitor,
	})
	if err != nil {
		return err
	}
	if h.nc, err = h.srv.ConnectInProcess(h.auth.HubSecret(), "agentcom-hub"); err != nil {
		h.srv.Shutdown() // the step failed: it leaves nothing running
	}
	return err
}

// stopBroker closes the hub's connection and stops NATS.
func (h *Hub) stopBroker(context.Context) {
	if h.nc != nil {
		h.nc.Close()
	}
	h.srv.Shutdown()
}

// openStore opens the event store and the tokens, and writes the admin
// token on the first start.
func (h *Hub) openStore(ctx context.Context) (err error) {
	if h.store, err = broker.OpenEventStore(ctx, h.nc); err != nil {
		return err
	}
	if h.tokens, err = broker.OpenTokens(ctx, h.nc, h.auth); err != nil {
		return err
	}
	r := h.cfg.RateLimits
	h.limiter = limits.New(limits.Limits{Light: r.Light, Normal: r.Normal, Heavy: r.Heavy}, h.now)
	if h.rateLimits, err = broker.OpenRateLimits(ctx, h.nc, h.limiter); err != nil {
		return err
	}
	if h.reservationStore, err = broker.OpenReservations(ctx, h.nc); err != nil {
		return err
	}
	if h.idempotency, err = broker.OpenIdempotency(ctx, h.nc, h.cfg.Tasks.Window()); err != nil {
		return err
	}
	m := h.cfg.Messages
	if h.messageStore, err = broker.OpenMessages(ctx, h.nc, m.MaxAge, m.MaxMsgs, h.plan.Telemetry); err != nil {
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
	if err := broker.OpenTelemetry(ctx, h.nc, h.cfg.Telemetry.MaxAge, h.plan.Telemetry); err != nil {
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

// stopTelemetry sends what the emitter holds and closes its connection.
func (h *Hub) stopTelemetry(context.Context) {
	h.tel.Stop()
	if h.telNC != nil {
		h.telNC.Close()
	}
}

// listenHTTP takes the HTTP address first, so that an address in use
// fails the start at once, before the store is opened and replayed.
func (h *Hub) listenHTTP(context.Context) error {
	l, err := net.Listen("tcp", h.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen http on %s (http.listen): %w", h.cfg.HTTP.Listen, err)
	}
	h.httpL, h.httpURL = l, "http://"+l.Addr().String()
	if files := tlsFiles(h.cfg.HTTP.TLS); files.On() {
		tc, err := broker.TLSConfig(files)
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("http.tls: %w", err)
		}
		h.httpL, h.httpURL = tls.NewListener(l, tc), "https://"+l.Addr().String()
	}
	return nil
}

func tlsFiles(t config.TLS) broker.TLSFiles {
	return broker.TLSFiles{Cert: t.Cert, Key: t.Key, ClientCA: t.ClientCA}
}

// serveHTTP serves the API on the listener listenHTTP took.
func (h *Hub) serveHTTP(context.Context) error {
	handler, err := h.api.HTTPHandler()
	if err != nil {
		return err
	}
	h.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: stdlog.New(logsink.LineWriter(h.log.Module("http"), "http server"), "", 0)}
	h.http.RegisterOnShutdown(h.api.StopStreams)
	go func() {
		if err := h.http.Serve(h.httpL); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error().Err(err).Msg("http server stopped")
		}
	}()
	return nil
}

// stopHTTP lets requests in flight finish and summarises the refused
// ones a last time.
func (h *Hub) stopHTTP(ctx context.Context) {
	_ = h.http.Shutdown(ctx)
	h.api.Stop()
}

// logFile is the log sink's file settings.
func (h *Hub) logFile() logsink.SinkConfig {
	return logsink.SinkConfig{Dir: filepath.Join(h.cfg.DataDir, "logs"), MaxSizeMB: h.cfg.Log.MaxSizeMB,
		MaxBackups: h.cfg.Log.MaxBackups}
}

// startLogs publishes every log line to the LOGS stream and starts the
// sink that writes them, and the sidecars' lines, to rotated files.
func (h *Hub) startLogs(ctx context.Context) error {
	stream, err := broker.OpenLogs(ctx, h.nc, h.plan.Logs)
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
// NATS) straight to the file, which closeFallback closes at the very end.
func (h *Hub) stopLogs(ctx context.Context) {
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
	h.fallback = file
}

// closeFallback detaches the hub from the log output and closes the file
// the last lines went to.
func (h *Hub) closeFallback(context.Context) {
	if h.out != nil {
		h.out.Attach(nil)
	}
	if h.fallback != nil {
		_ = h.fallback.Close()
	}
}
