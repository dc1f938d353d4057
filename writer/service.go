package writer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
)

// Errors of Execute besides the domain's.
var (
	// ErrStoreLoss means the hub found events missing from its store and
	// refuses commands until an operator restores a backup or accepts the
	// loss (agentcom store accept-loss): appending now could reuse the
	// sequence of an event it acknowledged.
	ErrStoreLoss = errors.New("the event store lost events; restore a backup or run agentcom store accept-loss")
	// ErrStopped means the service no longer takes commands (shutting down).
	ErrStopped = errors.New("hub is shutting down")
	// ErrUnavailable means the service stopped taking commands (see Err).
	ErrUnavailable = errors.New("hub cannot take commands")
	// ErrUnknownOutcome means the store did not answer: the command may or
	// may not have been stored. Check before sending it again.
	ErrUnknownOutcome = errors.New("the store did not confirm the command")
)

// Defaults of Params.
const (
	// DefaultMaxBatch is how many commands one group carries at most. Each
	// command makes at most two events, well under JetStream's limit of
	// 1000 messages per atomic batch.
	DefaultMaxBatch = 256
	// DefaultMinAtomic is the smallest group sent as one atomic batch when
	// the server syncs always. Below it, pipelined appends cost less than
	// a batch's fixed cost (see docs/durability.md).
	DefaultMinAtomic = 8
	// DefaultMaxInflight is how many groups may await their acks at once.
	DefaultMaxInflight = 4
)

// Service is the only writer of domain events. Execute is safe for
// concurrent use. Inside, two goroutines share the work: the decider
// groups waiting commands, decides them and sends their events; the
// applier reads the acks in send order, applies the events to the
// projection and answers the callers. While one group awaits its acks the
// next is decided and sent. A task with a command in flight takes no other
// command until that one is applied, so every command is decided against
// durable state.
type Service struct {
	store      *broker.EventStore
	views      *projections.Views
	log        logsink.Logger
	now        func() time.Time
	maxBatch   int
	syncAlways bool
	minAtomic  int

	commits  atomic.Uint64
	commands atomic.Uint64

	in        chan []*pending  // callers to decider: one command, or ExecuteAll's at once
	flights   chan *flight     // decider to applier, in send order
	completed chan *completion // applier to decider
	quit      chan struct{}
	done      chan struct{}
	started   atomic.Bool
	stopOnce  sync.Once
	broken    atomic.Pointer[error] // set when an event cannot be applied
	loss      atomic.Pointer[error] // set when the store lost events
	onApplied atomic.Pointer[func(Applied)]

	// Owned by the decider goroutine.
	inflight map[key]int                // aggregates (key.lock) in flight: -1 alone, else how many share it
	reserved map[string]map[string]bool // agents' tasks assigned in flight (their slots are taken)
	held     []*pending                 // commands put off to a later group
}

// Params are the parts and settings of a Service.
type Params struct {
	Store *broker.EventStore
	Views *projections.Views
	Log   logsink.Logger
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// MaxBatch bounds a group; defaults to DefaultMaxBatch.
	MaxBatch int
	// SyncAlways says the server fsyncs every write (store.sync always):
	// groups of at least MinAtomic commands then go as one atomic batch.
	SyncAlways bool
	// MinAtomic defaults to DefaultMinAtomic.
	MinAtomic int
	// MaxInflight defaults to DefaultMaxInflight.
	MaxInflight int
}

// pending is one command on its way.
type pending struct {
	ctx    context.Context
	cmd    command
	keys   keys // the aggregates it reads or writes (command.keys), set by the decider
	result chan outcome
	// conflicts met so far: a command is decided again once.
	conflicts int
}

type outcome struct {
	after state
	err   error
}

// New returns a stopped service; call Start.
func New(p Params) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	p.MaxBatch = cmpOr(p.MaxBatch, DefaultMaxBatch)
	p.MinAtomic = cmpOr(p.MinAtomic, DefaultMinAtomic)
	p.MaxInflight = cmpOr(p.MaxInflight, DefaultMaxInflight)
	return &Service{
		store: p.Store, views: p.Views, log: p.Log.Module("command"), now: p.Now,
		maxBatch: p.MaxBatch, syncAlways: p.SyncAlways, minAtomic: p.MinAtomic,
		in: make(chan []*pending), flights: make(chan *flight, inflightFor(p)),
		completed: make(chan *completion, p.MaxInflight+2),
		quit:      make(chan struct{}), done: make(chan struct{}), inflight: map[key]int{},
		reserved: map[string]map[string]bool{},
	}
}

// inflightFor is the applier's queue length. When the server syncs always
// the batch's sync is the cost: the decider then waits for the applier to
// be free, so that commands gather into larger groups meanwhile.
func inflightFor(p Params) int {
	if p.SyncAlways {
		return 0
	}
	return p.MaxInflight
}

func cmpOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Start brings the projections up to the end of the stream, then starts
// taking commands. It returns once commands are accepted.
func (s *Service) Start(ctx context.Context) error {
	if err := s.CatchUp(ctx); errors.Is(err, broker.ErrLoss) {
		s.RefuseForLoss(err) // serve what was read, take no commands
	} else if err != nil {
		return err
	}
	s.started.Store(true)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		s.applier()
	}()
	go func() {
		defer close(s.done)
		s.decider()
		close(s.flights)
		<-applied
	}()
	return nil
}

// Started reports whether Start succeeded.
func (s *Service) Started() bool { return s.started.Load() }

// Stop refuses new commands, finishes those already taken, and returns
// when both goroutines have ended. Safe to call twice, and after a Start
// that failed.
func (s *Service) Stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	if s.started.Load() {
		<-s.done
	}
}

// Applied is one group of events the writer stored and applied, in stream
// order (maybe none), with what the events left behind: Tasks[i] is the
// task of Events[i] after the group (nil for an agent's event), Agents[i]
// its agent (nil for a task's), and QueueDepth the queued tasks then.
// Whoever reacts to a group learns what it did from this, without reading
// the projections again.
type Applied struct {
	Events     []domain.Envelope
	Tasks      []*domain.Task
	Agents     []*domain.Agent
	QueueDepth int
}

// OnApplied sets a function called (on the applier goroutine, so it must
// not block) after each group is applied and its callers answered. It may
// keep what it is given.
func (s *Service) OnApplied(fn func(Applied)) { s.onApplied.Store(&fn) }

// Err is why the service stopped taking commands: an event it stored could
// not be applied to the projection, which would otherwise drift from the
// stream. nil while healthy.
func (s *Service) Err() error {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// RefuseForLoss makes every command fail with ErrStoreLoss: the store
// lost events (why).
func (s *Service) RefuseForLoss(why error) { s.loss.CompareAndSwap(nil, &why) }

// Loss is why the service refuses commands for a loss in the store, nil
// when it does not.
func (s *Service) Loss() error {
	if p := s.loss.Load(); p != nil {
		return *p
	}
	return nil
}

// StoreFull is why the store refuses writes now (broker.ErrStoreFull), or
// nil. Unlike Err it passes by itself once space returns.
func (s *Service) StoreFull() error { return s.store.Full() }

func (s *Service) breakWith(err error) {
	s.broken.CompareAndSwap(nil, &err)
	s.log.Error().Err(err).Msg("projection cannot follow the stream; refusing commands")
}

// CatchUp applies every event after the projection's last one. Only the
// applier calls it once the service runs.
func (s *Service) CatchUp(ctx context.Context) error {
	const chunk = 1024
	buf := make([]domain.Envelope, 0, chunk)
	flush := func() error {
		err := s.views.Apply(buf...)
		buf = buf[:0]
		return err
	}
	var accepted uint64 // loss up to here was accepted by an operator
	err := s.store.Read(ctx, broker.ReadOpts{From: s.views.LastSeq() + 1}, func(env domain.Envelope) error {
		if a, ok := env.Data.(domain.StoreLossAccepted); ok {
			accepted = max(accepted, a.Through)
		}
		buf = append(buf, env)
		if len(buf) == chunk {
			return flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, broker.ErrLoss) {
		return fmt.Errorf("catch up projections: %w", err)
	}
	if ferr := flush(); ferr != nil {
		return fmt.Errorf("catch up projections: %w", ferr)
	}
	if err != nil && !LossAccepted(err, accepted) {
		return fmt.Errorf("catch up projections: %w", err)
	}
	return nil
}

// LossAccepted reports whether every sequence a read missed is at or
// before an accepted loss's end.
func LossAccepted(err error, through uint64) bool {
	var loss *broker.LossError
	if !errors.As(err, &loss) {
		return false
	}
	return loss.Missing[len(loss.Missing)-1].Last <= through
}

// Execute runs one task command and returns the task's state after it.
// It returns once the command's events are durable and applied.
func (s *Service) Execute(ctx context.Context, cmd domain.Command) (*domain.Task, error) {
	after, err := s.execute(ctx, taskCommand{cmd})
	return after.task, err
}

// ExecuteAgent runs one agent command and returns the agent's state after it.
func (s *Service) ExecuteAgent(ctx context.Context, cmd domain.AgentCommand) (*domain.Agent, error) {
	after, err := s.execute(ctx, agentCommand{cmd})
	return after.agent, err
}

// ExecuteAll runs task commands in the order given and returns each
// task's state after its command, or its error. They reach the decider
// at once, so they are decided and stored in that order, and fill its
// groups.
func (s *Service) ExecuteAll(ctx context.Context, cmds []domain.Command) ([]*domain.Task, []error) {
	tasks, errs := make([]*domain.Task, len(cmds)), make([]error, len(cmds))
	ctx = logsink.Traced(ctx)
	ps := make([]*pending, len(cmds))
	for i, cmd := range cmds {
		ps[i] = newPending(ctx, taskCommand{cmd})
	}
	err := s.enqueue(ctx, ps)
	for i, p := range ps {
		if err != nil {
			errs[i] = err
			continue
		}
		after, perr := await(ctx, p)
		tasks[i], errs[i] = after.task, perr
	}
	return tasks, errs
}

func (s *Service) execute(ctx context.Context, cmd command) (state, error) {
	p := newPending(logsink.Traced(ctx), cmd)
	if err := s.enqueue(p.ctx, []*pending{p}); err != nil {
		return state{}, err
	}
	return await(p.ctx, p)
}

func newPending(ctx context.Context, cmd command) *pending {
	return &pending{ctx: ctx, cmd: cmd, result: make(chan outcome, 1)}
}

// enqueue hands commands to the decider, together and in order.
func (s *Service) enqueue(ctx context.Context, ps []*pending) error {
	if err := s.refusal(); err != nil {
		return err
	}
	select {
	case s.in <- ps:
		return nil
	case <-s.quit:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("queue command: %w", ctx.Err())
	}
}

// await waits for a queued command's outcome.
func await(ctx context.Context, p *pending) (state, error) {
	select {
	case o := <-p.result:
		return o.after, o.err
	case <-ctx.Done():
		return state{}, fmt.Errorf("await command: %w", ctx.Err())
	}
}

// refusal is why no command can be taken now, if any.
func (s *Service) refusal() error {
	if err := s.Loss(); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreLoss, err)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return s.store.Full()
}

// ServiceStats counts what the service has done.
type ServiceStats struct {
	// Commits is the number of groups whose events were stored.
	Commits uint64 `json:"commits"`
	// Commands is the number of commands those groups carried.
	Commands uint64 `json:"commands"`
}

// Stats returns the service's counters.
func (s *Service) Stats() ServiceStats {
	return ServiceStats{Commits: s.commits.Load(), Commands: s.commands.Load()}
}

// NewTaskID returns a new task id: "task-" and 16 hex digits.
func NewTaskID() string { return "task-" + randomHex(8) }

func NewEventID() string { return "evt-" + randomHex(12) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
