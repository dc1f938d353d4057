package sidecar

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// Shutdown bounds.
const (
	byeTimeout   = 2 * time.Second
	drainTimeout = 10 * time.Second
)

// Why a task's context ended.
var (
	errDropped  = errors.New("the hub took the task back")
	errShutdown = errors.New("the sidecar is shutting down")
)

// Sidecar is one agent's connection to the hub and the work it holds.
type Sidecar struct {
	cfg        Config
	log        logsink.Logger
	session    string
	store      store
	worker     worker
	inbox      *inbox
	relay      *relay
	reconnect  *backoff
	pushPrefix string
	// progress is the progress interval in use: the configured one, or
	// the hub's if that is shorter (set by each hello).
	progress progressClock

	ctx     context.Context
	cancel  context.CancelCauseFunc
	nc      *nats.Conn
	sub     *nats.Subscription
	unlock  func()
	rehello chan struct{} // a connect or reconnect happened, or the hub lost the session: say hello
	closed  chan struct{} // the connection is closed for good
	wg      sync.WaitGroup

	mu       sync.Mutex
	tasks    []*task // held tasks, oldest first
	stopping bool
	err      error
	done     chan struct{} // closed by fail

	stopOnce sync.Once
}

// New returns a sidecar for cfg; Start connects it.
func New(cfg Config, log logsink.Logger) *Sidecar {
	cfg = cfg.withDefaults()
	s := &Sidecar{
		cfg:        cfg,
		log:        log.Module("sidecar").With("agent_id", cfg.AgentID),
		session:    newSessionID(),
		store:      store{dir: cfg.StateDir},
		reconnect:  newBackoff(cfg.RetryBase, cfg.RetryMax),
		pushPrefix: broker.Push(cfg.AgentID, ""),
		rehello:    make(chan struct{}, 1),
		closed:     make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.reconnect.jitter = true
	s.progress.set(cfg.ProgressInterval)
	if cfg.Exec != "" {
		s.worker = execWorker{cfg: cfg}
	} else {
		s.worker = wakeWorker{cfg: cfg}
	}
	return s
}

// newSessionID returns a random id made once per process.
func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sess-" + hex.EncodeToString(b[:])
}

// Session is the id this process says hello with.
func (s *Sidecar) Session() string { return s.session }

// Done is closed when the sidecar can no longer work (its token was
// refused, or its id does not match the token); Err says why.
func (s *Sidecar) Done() <-chan struct{} { return s.done }

// Conn is the sidecar's NATS connection (nil before Start). Its log
// publisher rides on it.
func (s *Sidecar) Conn() *nats.Conn { return s.nc }

// Err is why Done was closed, or nil.
func (s *Sidecar) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Start takes the state directory, loads any persisted task and starts
// connecting. It does not wait for the hub: connecting, and reconnecting,
// go on in the background.
func (s *Sidecar) Start(ctx context.Context) (err error) {
	if err := s.cfg.check(); err != nil {
		return err
	}
	if s.unlock, err = lockState(s.cfg.StateDir); err != nil {
		return err
	}
	s.ctx, s.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := s.recoverState(); err != nil {
		return err
	}
	if s.inbox, err = openInbox(s.cfg.InboxDir); err != nil {
		return err
	}
	held := len(s.tasks) // read before the callbacks start
	if err := s.connect(); err != nil {
		return err
	}
	if err := s.startRelay(); err != nil {
		return err
	}
	s.wg.Add(1)
	go s.sessionLoop()
	mode := "exec"
	if s.cfg.Wake != "" {
		mode = "wake"
	}
	s.log.Info().Str("hub", s.cfg.Hub).Str("mode", mode).Str("session", s.session).
		Str("state_dir", s.cfg.StateDir).Str("inbox_dir", s.cfg.InboxDir).Str("relay_socket", s.relay.path).
		Int("held", held).Msg("sidecar started")
	return nil
}

// recoverState loads the tasks a previous run persisted. They wait for the
// hub's answer to hello. An unreadable file is moved aside: the hub
// reclaims what it cannot hear about.
func (s *Sidecar) recoverState() error {
	recs, err := s.store.load()
	if err != nil {
		to, qerr := s.store.quarantine()
		if qerr != nil {
			return fmt.Errorf("recover state: %w", errors.Join(err, qerr))
		}
		s.log.Error().Err(err).Str("moved_to", to).Msg("state file unreadable; moved aside")
	}
	for _, rec := range recs {
		t := s.newTask(rec)
		t.resumed = true
		s.tasks = append(s.tasks, t)
		t.log.Notice().Uint64("generation", rec.Assignment.Generation).Str("status", rec.Status).
			Msg("task recovered from state; reporting it in hello")
	}
	return nil
}

// connect dials the hub with infinite reconnects and subscribes to the
// agent's pushes.
func (s *Sidecar) connect() error {
	id := s.cfg.AgentID
	opts := append(broker.ClientTLS(s.cfg.TLS).Options(),
		nats.Token(s.cfg.Token),
		nats.Name("agentcom-sidecar:"+id),
		nats.CustomInboxPrefix(broker.AgentInbox(id)),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(func(int) time.Duration { return s.reconnect.next() }),
		nats.ReconnectBufSize(-1), // fail fast while disconnected; reports retry on their own
		nats.ConnectHandler(s.onConnect),
		nats.ReconnectHandler(s.onConnect),
		nats.DisconnectErrHandler(s.onDisconnect),
		nats.ReconnectErrHandler(s.onConnectError),
		nats.ClosedHandler(s.onClosed),
		nats.ErrorHandler(s.onAsyncError),
	)
	nc, err := nats.Connect(s.cfg.Hub, opts...)
	if err != nil {
		return fmt.Errorf("connect to hub at %s: %w", s.cfg.Hub, broker.ExplainTLS(s.cfg.Hub, err))
	}
	s.nc = nc
	if s.sub, err = nc.Subscribe(fmt.Sprintf(broker.PushAllT, id), s.onPush); err != nil {
		return fmt.Errorf("subscribe to pushes: %w", err)
	}
	return nil
}

func (s *Sidecar) onConnect(nc *nats.Conn) {
	s.log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("connected to hub")
	s.requestHello()
}

// requestHello makes the session loop say hello now.
func (s *Sidecar) requestHello() {
	select {
	case s.rehello <- struct{}{}:
	default:
	}
}

func (s *Sidecar) onDisconnect(_ *nats.Conn, err error) {
	if s.isStopping() {
		return
	}
	e := s.log.Warning()
	if err != nil {
		e = e.Err(err)
	}
	e.Msg("disconnected from hub; reconnecting")
}

func (s *Sidecar) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *Sidecar) onConnectError(_ *nats.Conn, err error) {
	s.log.Warning().Err(broker.ExplainTLS(s.cfg.Hub, err)).Msg("cannot reach hub; retrying")
}

// onClosed ends the sidecar's usefulness unless it is stopping: the
// client gives up only when the hub refuses the token twice in a row.
func (s *Sidecar) onClosed(nc *nats.Conn) {
	close(s.closed)
	if s.isStopping() {
		return
	}
	last := nc.LastError()
	switch {
	case last == nil:
		s.fail(errors.New("connection to hub closed"))
	case strings.Contains(strings.ToLower(last.Error()), "authorization violation"):
		s.fail(fmt.Errorf("hub refused the token of agent %q: %w", s.cfg.AgentID, last))
	default:
		s.fail(fmt.Errorf("connection to hub closed: %w", last))
	}
}

// onAsyncError reports errors that arrive outside a request. A permission
// violation means the agent id does not match the token: nothing will work.
func (s *Sidecar) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		s.fail(fmt.Errorf("hub refused a subject (does agent_id %q match the token?): %w", s.cfg.AgentID, err))
		return
	}
	s.log.Warning().Err(err).Msg("nats error")
}

// fail records a fatal error and closes Done.
func (s *Sidecar) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	s.log.Error().Err(err).Msg("sidecar cannot work")
}

// onPush handles a push from the hub.
func (s *Sidecar) onPush(m *nats.Msg) {
	switch kind := strings.TrimPrefix(m.Subject, s.pushPrefix); kind {
	case broker.PushTask:
		var a protocol.Assignment
		if err := json.Unmarshal(m.Data, &a); err != nil || a.TaskID == "" {
			s.log.Warning().Err(err).Msg("assignment push unreadable; ignored")
			return
		}
		s.onAssignment(a)
	case broker.PushMessage:
		s.onMessage(m.Data)
	case broker.PushAbort:
		var ab protocol.Abort
		if err := json.Unmarshal(m.Data, &ab); err != nil {
			s.log.Warning().Err(err).Msg("abort push unreadable; ignored")
			return
		}
		s.onAbort(ab)
	default:
		s.log.Warning().Str("kind", kind).Msg("unknown push kind; ignored")
	}
}

// Stop stops taking work, ends the work in progress (its task stays
// persisted, so a restart reports it), says bye and drains the connection.
// It blocks until stopped and is safe to call twice.
func (s *Sidecar) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		if s.sub != nil {
			_ = s.sub.Unsubscribe()
		}
		s.stopRelay()
		if s.cancel != nil {
			s.cancel(errShutdown)
		}
		s.wg.Wait()
		if s.nc != nil {
			s.bye()
			s.drain()
		}
		if s.unlock != nil {
			s.unlock()
		}
		s.log.Info().Msg("sidecar stopped")
	})
}

// bye ends the session, best effort.
func (s *Sidecar) bye() {
	if !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	rid := logsink.NewRequestID()
	if err := s.request(ctx, broker.VerbBye, rid, protocol.Heartbeat{Session: s.session}, nil); err != nil {
		s.log.Info().Err(err).Str("request_id", rid).Msg("bye not answered")
	}
}

func (s *Sidecar) drain() {
	if err := s.nc.Drain(); err != nil {
		s.nc.Close()
	}
	select {
	case <-s.closed:
	case <-time.After(drainTimeout):
		s.nc.Close()
	}
}

// spawnLocked runs f in a goroutine that Stop waits for, unless the
// sidecar is stopping. s.mu must be held.
func (s *Sidecar) spawnLocked(f func()) bool {
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Sidecar) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spawnLocked(f)
}
