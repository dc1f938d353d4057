package hub

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

// ErrStopped means the service no longer takes commands (shutting down).
var ErrStopped = errors.New("hub is shutting down")

// DefaultMaxBatch is how many commands one group commit carries at most.
// Each command makes at most two events, well under JetStream's limit of
// 1000 messages per atomic batch.
const DefaultMaxBatch = 256

// Service is the only writer of domain events. Execute is safe for
// concurrent use; commands are decided and appended by one loop.
type Service struct {
	store    *broker.EventStore
	tasks    *projections.Tasks
	log      logsink.Logger
	now      func() time.Time
	maxBatch int

	commits  atomic.Uint64
	commands atomic.Uint64

	in       chan *pending
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// ServiceParams are the parts a Service works with.
type ServiceParams struct {
	Store *broker.EventStore
	Tasks *projections.Tasks
	Log   logsink.Logger
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// MaxBatch bounds a group commit; defaults to DefaultMaxBatch.
	MaxBatch int
}

type pending struct {
	ctx    context.Context
	cmd    domain.Command
	result chan outcome
}

type outcome struct {
	task *domain.Task
	err  error
}

// NewService returns a stopped service; call Start.
func NewService(p ServiceParams) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.MaxBatch <= 0 {
		p.MaxBatch = DefaultMaxBatch
	}
	return &Service{
		store: p.Store, tasks: p.Tasks, log: p.Log.Module("command"), now: p.Now, maxBatch: p.MaxBatch,
		in: make(chan *pending), quit: make(chan struct{}), done: make(chan struct{}),
	}
}

// Start brings the projections up to the end of the stream, then starts
// the command loop. It returns once commands are accepted.
func (s *Service) Start(ctx context.Context) error {
	if err := s.CatchUp(ctx); err != nil {
		return err
	}
	go s.loop()
	return nil
}

// Stop refuses new commands, finishes those already taken, and returns
// when the loop has ended. Safe to call twice.
func (s *Service) Stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.done
}

// CatchUp applies every event after the projection's last one.
func (s *Service) CatchUp(ctx context.Context) error {
	const chunk = 1024
	buf := make([]domain.Envelope, 0, chunk)
	flush := func() error {
		err := s.tasks.Apply(buf...)
		buf = buf[:0]
		return err
	}
	err := s.store.Read(ctx, broker.ReadOpts{From: s.tasks.LastSeq() + 1}, func(env domain.Envelope) error {
		buf = append(buf, env)
		if len(buf) == chunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catch up projections: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("catch up projections: %w", err)
	}
	return nil
}

// Execute runs one command and returns the task's state after it. It
// returns once the command's events are durable and applied.
func (s *Service) Execute(ctx context.Context, cmd domain.Command) (*domain.Task, error) {
	p := &pending{ctx: ctx, cmd: cmd, result: make(chan outcome, 1)}
	select {
	case s.in <- p:
	case <-s.quit:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("queue command: %w", ctx.Err())
	}
	select {
	case o := <-p.result:
		return o.task, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("await command: %w", ctx.Err())
	}
}

func (s *Service) loop() {
	defer close(s.done)
	for {
		select {
		case p := <-s.in:
			s.process(s.gather(p))
		case <-s.quit:
			s.drain()
			return
		}
	}
}

// gather collects the commands already waiting behind the first one.
func (s *Service) gather(first *pending) []*pending {
	group := []*pending{first}
	for len(group) < s.maxBatch {
		select {
		case p := <-s.in:
			group = append(group, p)
		default:
			return group
		}
	}
	return group
}

// drain finishes the commands whose senders got in before quit closed.
func (s *Service) drain() {
	for {
		select {
		case p := <-s.in:
			s.process(s.gather(p))
		default:
			return
		}
	}
}

// ServiceStats counts what the command loop has done.
type ServiceStats struct {
	// Commits is the number of successful appends (group commits).
	Commits uint64 `json:"commits"`
	// Commands is the number of commands those appends carried.
	Commands uint64 `json:"commands"`
}

// Stats returns the loop's counters.
func (s *Service) Stats() ServiceStats {
	return ServiceStats{Commits: s.commits.Load(), Commands: s.commands.Load()}
}

// NewTaskID returns a new task id: "task-" and 16 hex digits.
func NewTaskID() string { return "task-" + randomHex(8) }

func newEventID() string { return "evt-" + randomHex(12) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
