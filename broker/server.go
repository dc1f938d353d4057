package broker

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
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
	// MaxStore is the most the server may store, in bytes; the server
	// answers "insufficient resources" beyond it. Zero leaves the server's
	// own default (three quarters of the free space at start).
	MaxStore int64
	// TLS, when on, makes every client connection over the network use
	// TLS (the hub's in-process connections do not need it).
	TLS TLSFiles
	// Monitor is host:port of the server's HTTP monitoring (/varz, /connz,
	// /jsz...), "" for none; port 0 picks one. It has no authentication,
	// so the configuration keeps it on loopback. With it on, an admin may
	// also connect as the system account's read-only "system" user, for
	// nats server report.
	Monitor string
	// Auth authenticates every client connection.
	Auth *Authenticator
	// Log receives the server's own log lines.
	Log logsink.Logger
}

// Server is a running embedded NATS server with JetStream.
type Server struct {
	ns         *server.Server
	auth       *Authenticator
	violations *violationHook // OnPermissionViolation
	// live is the connection count of the last WatchAgentDisconnects.
	live atomic.Pointer[liveConns]
	// jsConfig is JetStream's configuration at start, to start it again.
	jsConfig server.JetStreamConfig
}

// readyTimeout bounds how long StartServer waits for a server that
// reports no fatal error but does not get ready either.
const readyTimeout = 30 * time.Second

// StartServer starts the embedded server and waits until it accepts
// connections. A listen address in use fails at once, naming it: the
// port is tried first, and a fatal error the server reports while
// starting (the port taken in between) ends the wait.
func StartServer(cfg ServerConfig) (*Server, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	if err := probeListen(opts); err != nil {
		return nil, err
	}
	return start(cfg, opts)
}

// start starts the server on opts and waits until it is ready.
func start(cfg ServerConfig, opts *server.Options) (*Server, error) {
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create nats server: %w", err)
	}
	fatal, hook := make(chan string, 1), &violationHook{}
	ns.SetLoggerV2(natsLogger{log: cfg.Log.Module("nats"), fatal: fatal, violations: hook}, false, false, false)
	ns.Start()
	if err := waitReady(ns, fatal, cfg.Listen); err != nil {
		ns.Shutdown()
		return nil, err
	}
	cfg.Auth.setSystemAccount(ns.SystemAccount())
	cfg.Auth.monitoring.Store(cfg.Monitor != "")
	js := *ns.JetStreamConfig()
	js.StoreDir = opts.StoreDir // EnableJetStream adds the jetstream folder itself
	return &Server{ns: ns, auth: cfg.Auth, violations: hook, jsConfig: js}, nil
}

// probeListen listens on the client address and closes it again, so that
// an address in use is an immediate error naming it. Port 0 (any free
// port) and no listener need no probe.
func probeListen(opts *server.Options) error {
	if opts.DontListen || opts.Port == server.RANDOM_PORT {
		return nil
	}
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen nats on %s (nats.listen): %w", addr, err)
	}
	return l.Close()
}

// waitReady waits until ns accepts connections, the server reports a
// fatal error, or readyTimeout passes.
func waitReady(ns *server.Server, fatal <-chan string, listen string) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case detail := <-fatal:
			return fmt.Errorf("start nats server on %s (nats.listen): %s", listen, detail)
		default:
		}
		if ns.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
	}
	return fmt.Errorf("start nats server on %s (nats.listen): not ready after %s", listen, readyTimeout)
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
	if cfg.MaxStore > 0 {
		opts.JetStreamMaxStore = cfg.MaxStore
	}
	if err := monitorOptions(opts, cfg.Monitor); err != nil {
		return nil, err
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
	if cfg.TLS.On() {
		tc, err := TLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("nats.tls: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, cfg.TLS.ClientCA != ""
	}
	return opts, nil
}

// monitorOptions turns the monitoring port on at addr ("" leaves it off).
func monitorOptions(opts *server.Options, addr string) error {
	if addr == "" {
		return nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parse nats monitor address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("parse nats monitor port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts.HTTPHost, opts.HTTPPort = host, port
	return nil
}

// MonitorURL is the monitoring port's http:// URL, "" when it is off.
func (s *Server) MonitorURL() string {
	addr := s.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
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
// Fatal errors are also sent on fatal (if there is room), so that a start
// that cannot succeed ends at once.
type natsLogger struct {
	log        logsink.Logger
	fatal      chan<- string
	violations *violationHook
}

// Noticef goes to debug: the server's notices are start-up banners and
// routine chatter; its warnings and errors keep their weight.
func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Warnf(format string, v ...any) {
	l.log.Warning().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Fatalf(format string, v ...any) {
	detail := fmt.Sprintf(format, v...)
	l.log.Error().Str("detail", detail).Msg("nats server fatal")
	select {
	case l.fatal <- detail:
	default:
	}
}
func (l natsLogger) Errorf(format string, v ...any) {
	detail := fmt.Sprintf(format, v...)
	if l.permissionViolation(detail) {
		return
	}
	l.log.Error().Str("detail", detail).Msg("nats server")
}
func (l natsLogger) Debugf(format string, v ...any) {
	l.log.Debug().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (l natsLogger) Tracef(format string, v ...any) {
	l.log.Debug().Str("detail", fmt.Sprintf(format, v...)).Msg("nats server trace")
}
