// Package reservations holds agents' advisory file reservations (docs/
// protocol.md, reservations): an agent reserves paths or globs of a
// project, exclusive or shared, for a while, and gets them or the holders
// that stand in its way. Each project's reservations are one key of a KV
// bucket, changed only by compare-and-set, so two agents can never both
// hold an exclusive reservation on one path; they expire with their TTL,
// or with their agent past the reconnect grace.
package reservations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/telemetry"
)

// ErrConflict wraps a reserve that others' reservations stand in the way
// of; ErrNotFound a renew or release of a reservation there is not (or
// that is another agent's: an agent sees its own only).
var (
	ErrConflict = errors.New("the paths are reserved")
	ErrNotFound = errors.New("no such reservation")
)

// casAttempts bounds the retries of a change that raced another.
const casAttempts = 50

// Service changes and reads the reservations.
type Service struct {
	store *broker.ReservationStore
	log   logsink.Logger
	tel   *telemetry.Emitter
	now   func() time.Time

	mu      sync.Mutex
	holders map[string]map[string]bool // agent -> projects it holds reservations in
}

// New returns the service over store; Load reads who holds what.
func New(store *broker.ReservationStore, log logsink.Logger, tel *telemetry.Emitter, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, log: log.Module("agents"), tel: tel, now: now, holders: map[string]map[string]bool{}}
}

// Load notes the holders of every stored reservation.
func (s *Service) Load(ctx context.Context) error {
	projects, err := s.store.Projects(ctx)
	if err != nil {
		return err
	}
	for _, p := range projects {
		held, _, err := s.read(ctx, p)
		if err != nil {
			return err
		}
		s.note(p, held)
	}
	return nil
}

// List returns a project's live reservations, or every project's ("").
func (s *Service) List(ctx context.Context, project string) ([]protocol.Reservation, error) {
	if project != "" {
		v := &domain.ValidationError{}
		if checkProject(v, project); v.Err() != nil {
			return nil, v.Err()
		}
	}
	projects := []string{project}
	if project == "" {
		var err error
		if projects, err = s.store.Projects(ctx); err != nil {
			return nil, err
		}
	}
	out := []protocol.Reservation{}
	for _, p := range projects {
		held, _, err := s.read(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, live(held, s.now())...)
	}
	return out, nil
}

// read decodes a project's reservations and their revision.
func (s *Service) read(ctx context.Context, project string) ([]protocol.Reservation, uint64, error) {
	b, rev, err := s.store.Get(ctx, project)
	if err != nil || b == nil {
		return nil, rev, err
	}
	var held []protocol.Reservation
	if err := json.Unmarshal(b, &held); err != nil {
		return nil, rev, fmt.Errorf("decode reservations of %s: %w", project, err)
	}
	return held, rev, nil
}

// live are the reservations not expired at now.
func live(held []protocol.Reservation, now time.Time) []protocol.Reservation {
	return slices.DeleteFunc(slices.Clone(held), func(r protocol.Reservation) bool { return !r.ExpiresAt.After(now) })
}

// note records which agents hold reservations in project.
func (s *Service) note(project string, held []protocol.Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, projects := range s.holders {
		delete(projects, project)
	}
	for _, r := range held {
		if s.holders[r.AgentID] == nil {
			s.holders[r.AgentID] = map[string]bool{}
		}
		s.holders[r.AgentID][project] = true
	}
}

// projectsOf are the projects an agent holds reservations in.
func (s *Service) projectsOf(agent string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p := range s.holders[agent] {
		out = append(out, p)
	}
	return out
}
