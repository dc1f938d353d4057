package agents

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/guard"
	"github.com/agentcom/agentcom/lifecycle"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/writer"
)

// Coordinator is the hub's side of the agents: it answers their requests,
// matches queued tasks to idle agents, pushes assignments, and takes work
// back from agents that stop answering (leases and the reaper).
type Coordinator struct {
	svc      *writer.Service
	views    *projections.Views
	nc       *nats.Conn
	srv      *broker.Server
	cfg      atomic.Pointer[config.Agents] // in force: SetConfig changes it while the hub runs
	backoff  domain.Backoff
	jitter   func() float64
	log      logsink.Logger
	now      func() time.Time
	started  time.Time
	presence *presence
	sched    *scheduler
	tel      *telemetry.Emitter
	excused  excuses // stale busy declines let go without a cooldown
	guard    *guard.Guard
	reserved Reservations
	messages Messages
	swept    time.Time // the last sweep of expired reservations

	lanes    *broker.Lanes // one connection per agent for its requests
	sysConn  *nats.Conn
	quit     chan struct{}
	work     lifecycle.Gate // request handlers and loops, which Stop waits for
	stopOnce sync.Once
}

// Params are the parts a Coordinator works with.
type Params struct {
	Service *writer.Service
	Views   *projections.Views
	Conn    *nats.Conn
	Server  *broker.Server
	Config  config.Agents
	Log     logsink.Logger
	// Telemetry receives scheduler events (nil: none).
	Telemetry *telemetry.Emitter
	// Backoff spaces the attempts of failing tasks (zero: retry at once).
	Backoff domain.Backoff
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Paused starts the scheduler paused (tests that assign by hand).
	Paused bool
	// Reservations answers the reserve, renew and release verbs (nil:
	// none, each is 404).
	Reservations Reservations
	// Messages answers the send, inbox and ack verbs (nil: none).
	Messages Messages
}

// Messages are the agents' messages (messaging.Service).
type Messages interface {
	Send(ctx context.Context, from string, agent bool, req protocol.Send) (protocol.Message, error)
	Inbox(ctx context.Context, agent string) (protocol.Inbox, error)
	Ack(ctx context.Context, agent string, seq uint64) (uint64, error)
	Join(ctx context.Context, agent, channel string) (protocol.Channel, error)
	Leave(ctx context.Context, agent, channel string) (protocol.Channel, error)
	History(ctx context.Context, agent string, ref protocol.ChannelRef) ([]protocol.Message, error)
}

// Reservations are the agents' file reservations (reservations.Service).
type Reservations interface {
	Reserve(ctx context.Context, agent string, r protocol.Reserve) (protocol.Reservation, []protocol.Reservation, error)
	Renew(ctx context.Context, agent string, ref protocol.ReservationRef) (protocol.Reservation, error)
	Release(ctx context.Context, agent string, ref protocol.ReservationRef) error
	ReleaseAgent(ctx context.Context, agent string)
	Sweep(ctx context.Context)
}

// New returns a stopped coordinator; call Start.
func New(p Params) *Coordinator {
	if p.Now == nil {
		p.Now = time.Now
	}
	c := &Coordinator{svc: p.Service, views: p.Views, nc: p.Conn, srv: p.Server,
		backoff: p.Backoff, jitter: rand.Float64,
		log: p.Log.Module("agents"), now: p.Now, presence: newPresence(), quit: make(chan struct{}), tel: p.Telemetry,
		guard: newGuard(p.Config, p.Now), reserved: p.Reservations, messages: p.Messages}
	c.cfg.Store(&p.Config)
	c.sched = newScheduler(c)
	c.sched.paused.Store(p.Paused)
	return c
}

// conf is the agents' configuration in force.
func (c *Coordinator) conf() *config.Agents { return c.cfg.Load() }

// SetConfig puts a run-time change of the timings and the budget in
// force: the sweeper and the scheduler read it on their next pass, and
// each sidecar learns its new intervals with its next heartbeat's answer.
// The request rate and the sweep interval stay as the hub started.
func (c *Coordinator) SetConfig(a config.Agents) {
	c.cfg.Store(&a)
	c.sched.trigger()
}

// Start gives every agent the log believes online a full reap period to
// show up, then takes agent requests, watches disconnects, and starts the
// scheduler and the lease sweeper.
func (c *Coordinator) Start(ctx context.Context) error {
	c.started = c.now()
	for _, a := range c.views.Agents.List() {
		if a.Online() {
			c.presence.carry(a.ID, c.started)
		}
	}
	if err := c.openLanes(); err != nil {
		return err
	}
	var err error
	c.srv.OnPermissionViolation(c.permissionViolation)
	if c.sysConn, err = c.srv.WatchAgentDisconnects(c.disconnected, c.advisoryError); err != nil {
		return err
	}
	for _, loop := range []func(){func() { c.sched.run(c.quit) }, c.sweepLoop, c.violationLoop} {
		if c.work.Enter() {
			go func() { defer c.work.Leave(); loop() }()
		}
	}
	c.sched.trigger()
	return nil
}

// Stop stops taking agent requests and ends the scheduler and sweeper.
// Safe to call twice and before Start.
func (c *Coordinator) Stop() {
	c.stopOnce.Do(func() {
		if c.lanes != nil {
			c.lanes.Unsubscribe()
		}
		if c.sysConn != nil {
			c.sysConn.Close()
		}
		c.work.Close()
		close(c.quit)
		c.work.Wait()
		if c.lanes != nil {
			c.lanes.Close()
		}
	})
}

// Applied reacts to a group the writer applied: events that can make a
// match wake the scheduler. It runs on the writer's applier: it does not
// block.
func (c *Coordinator) Applied(g writer.Applied) {
	for _, env := range g.Events {
		switch env.Type {
		case domain.TypeTaskSubmitted, domain.TypeTaskReleased, domain.TypeTaskRetried, domain.TypeTaskReclaimed, domain.TypeTaskRequeued,
			domain.TypeTaskCompleted, domain.TypeTaskFailed, domain.TypeTaskCancelled,
			domain.TypeAgentConnected, domain.TypeAgentUnflagged, domain.TypeAgentUnblocked:
			c.sched.trigger()
			return
		}
	}
}

// disconnected is told by the server when an agent's last connection
// closes: the agent goes offline at once; its task waits out the
// reconnect grace before it is reclaimed.
func (c *Coordinator) disconnected(agentID, reason string) {
	c.lanes.Gone(agentID)
	if !c.work.Enter() {
		return
	}
	go func() {
		defer c.work.Leave()
		ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), logsink.NewRequestID()), writer.AppendTimeout)
		defer cancel()
		a, _, ok := c.views.Agents.Get(agentID)
		if !ok || !a.Online() || c.srv.KnownConnections(agentID) > 0 {
			return // gone already, or back already (a quick reconnect)
		}
		_, err := c.svc.ExecuteAgent(ctx, domain.DisconnectAgent{ID: agentID, Session: a.Session, Reason: "connection_closed: " + reason})
		c.logResult(ctx, err, agentID, "agent disconnected")
	}()
}

// advisoryError logs what the advisory connection reports, such as
// advisories dropped for a slow consumer: the reconcile catches up.
func (c *Coordinator) advisoryError(err error) {
	c.log.Warning().Err(err).Msg("disconnect advisories may be lost")
}

// push sends a message to one agent.
func (c *Coordinator) push(agentID, kind string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		err = c.nc.Publish(broker.Push(agentID, kind), b)
	}
	if err != nil {
		c.log.Warning().Err(err).Str("agent_id", agentID).Str("kind", kind).Msg("push to agent failed")
	}
}

func (c *Coordinator) logResult(ctx context.Context, err error, agentID, msg string) {
	if err != nil {
		c.log.Ctx(ctx).Debug().Err(err).Str("agent_id", agentID).Msg(msg + " refused")
		return
	}
	c.log.Ctx(ctx).Info().Str("agent_id", agentID).Msg(msg)
}

// requestIDOf is the request id that follows a task: its submit's, so one
// id ties the submit, the assignment, the sidecar's work and the result.
func requestIDOf(t *domain.Task) string {
	if t.RequestID != "" {
		return t.RequestID
	}
	return logsink.NewRequestID()
}

// assignmentOf is the push of task t, with its dependencies' results.
func (c *Coordinator) assignmentOf(t *domain.Task) protocol.Assignment {
	return protocol.Assignment{TaskID: t.ID, Generation: t.Generation, Description: t.Description,
		Priority: t.Priority.String(), Metadata: t.Metadata, NeededCapabilities: t.NeededCapabilities,
		CompleteBy: t.CompleteBy, RequestID: t.RequestID, Dependencies: c.dependencyResults(t)}
}

// presence is when each agent was last heard from. It is not event
// sourced: a restarted hub starts every online agent afresh.
type presence struct {
	mu   sync.Mutex
	seen map[string]time.Time
	// gone are sessions a newer connection replaced while they were
	// online, per agent (the last few), so they cannot come back.
	gone map[string][]string
	// carriedOver are the agents online in the log at start and not heard from
	// since: the reaper's, not the reconcile's.
	carriedOver map[string]bool
}

// maxReplaced bounds the replaced sessions remembered per agent.
const maxReplaced = 8

func newPresence() *presence {
	return &presence{seen: map[string]time.Time{}, gone: map[string][]string{}, carriedOver: map[string]bool{}}
}

func (p *presence) replace(id, session string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := append(p.gone[id], session)
	if len(g) > maxReplaced {
		g = g[len(g)-maxReplaced:]
	}
	p.gone[id] = g
}

func (p *presence) replaced(id, session string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.gone[id], session)
}

func (p *presence) touch(id string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[id] = at
	delete(p.carriedOver, id)
}

// carry starts an agent online in the log at a start.
func (p *presence) carry(id string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[id] = at
	p.carriedOver[id] = true
}

func (p *presence) carried(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.carriedOver[id]
}

func (p *presence) lastSeen(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seen[id]
	return t, ok
}

// LastSeen is when the hub last heard from an agent (a heartbeat or any
// request), while it is connected.
func (c *Coordinator) LastSeen(agentID string) (time.Time, bool) { return c.presence.lastSeen(agentID) }

// OverBudget reports whether an agent's completions today (UTC) cost its
// budget or more (agents.budgets.<id>, else agents.daily_budget_usd):
// nothing more is assigned to it until the day ends or the budget is raised.
func (c *Coordinator) OverBudget(agentID string, now time.Time) bool {
	b := c.conf().BudgetOf(agentID)
	return b > 0 && c.views.Tasks.SpentToday(agentID, now) >= b
}
