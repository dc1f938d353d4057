package broker

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Listen is host:port for client connections; port 0 picks a free
	// port. Empty means no listener at all: in-process clients only.
	Listen string
	// DataDir holds the JetStream store, under DataDir/jetstream.
	DataDir string
	// SyncInterval is how often the store fsyncs. Zero means fsync every
	// write before acknowledging it (sync "always", the default).
	SyncInterval time.Duration
	// Auth authenticates every client connection.
	Auth *Authenticator
	// Log receives the server's own log lines.
	Log logsink.Logger
}

// Server is a running embedded NATS server with JetStream.
type Server struct {
	ns   *server.Server
	auth *Authenticator
}

// StartServer starts the embedded server and waits until it accepts
// connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create nats server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log: cfg.Log.Module("nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start nats server: not ready after 30s (is the port in use?)")
	}
	cfg.Auth.setSystemAccount(ns.SystemAccount())
	return &Server{ns: ns, auth: cfg.Auth}, nil
}

func serverOptions(cfg ServerConfig) (*server.Options, error) {
	opts := &server.Options{
		ServerName:                 "agentcom-hub",
		JetStream:                  true,
		StoreDir:                   filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:                 cfg.SyncInterval == 0,
		SyncInterval:               cfg.SyncInterval,
		CustomClientAuthentication: cfg.Auth,
		NoSigs:                     true,
		MaxPayload:                 domain.MaxMessageBytes,
		DontListen:                 cfg.Listen == "",
	}
	if opts.DontListen {
		return opts, nil
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("parse nats listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("parse nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts.Host, opts.Port = host, port
	return opts, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Watched reports whether any subscription in the AgentCom account
// matches subject, such as a telemetry observer's agent_com.>.
func (s *Server) Watched(subject string) bool {
	return s.ns.GlobalAccount().SubscriptionInterest(subject)
}

// ConnectInProcess opens a client connection that bypasses TCP.
func (s *Server) ConnectInProcess(token, name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Token(token), nats.Name(name),
		nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect in-process: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits for it. Safe to call twice.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// natsLogger routes the server's own log through the project's logger, so
// stdout stays one JSON object per line.
type natsLogger struct{ log logsink.Logger }

// Noticef goes to debug: the server's notices are start-up banners and
// routine chatter; its warnings and errors keep their weight.
func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Warnf(format string, v ...any) {
	l.log.Warning().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server fatal")
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Debugf(format string, v ...any) {
	l.log.Debug().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Tracef(format string, v ...any) {
	l.log.Debug().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server trace")
}
