package reservations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// Reserve gives agent the paths, or answers the reservations in the way
// (wrapped in ErrConflict).
func (s *Service) Reserve(ctx context.Context, agent string, req protocol.Reserve) (protocol.Reservation, []protocol.Reservation, error) {
	if err := check(&req); err != nil {
		return protocol.Reservation{}, nil, err
	}
	var got protocol.Reservation
	var in []protocol.Reservation
	err := s.change(ctx, req.Project, func(held []protocol.Reservation, now time.Time) ([]protocol.Reservation, error) {
		if in = conflicts(held, agent, req); len(in) > 0 {
			return nil, fmt.Errorf("reserve in %s: %w", req.Project, ErrConflict)
		}
		got = protocol.Reservation{ID: "res-" + broker.NewToken()[:16], Project: req.Project, AgentID: agent,
			Paths: req.Paths, Exclusive: req.Exclusive, Reason: req.Reason, CreatedAt: now.UTC(),
			ExpiresAt: now.Add(time.Duration(req.TTLS) * time.Second).UTC()}
		return append(held, got), nil
	})
	switch {
	case errors.Is(err, ErrConflict):
		s.tel.Emit("reservation.conflict", map[string]float64{"holders": float64(len(in))},
			map[string]any{"project": req.Project, "agent_id": agent, "holder": in[0].AgentID})
		return protocol.Reservation{}, in, err
	case err != nil:
		return protocol.Reservation{}, nil, err
	}
	s.tel.Emit("reservation.reserve", map[string]float64{"paths": float64(len(got.Paths)), "ttl_s": float64(req.TTLS)},
		map[string]any{"project": got.Project, "agent_id": agent, "reservation_id": got.ID, "exclusive": got.Exclusive})
	return got, nil, nil
}

// Renew sets one of agent's reservations to expire TTLS from now.
func (s *Service) Renew(ctx context.Context, agent string, ref protocol.ReservationRef) (protocol.Reservation, error) {
	v := &domain.ValidationError{}
	checkProject(v, ref.Project)
	ref.TTLS = checkTTL(v, ref.TTLS)
	if err := v.Err(); err != nil {
		return protocol.Reservation{}, err
	}
	var got protocol.Reservation
	err := s.change(ctx, ref.Project, func(held []protocol.Reservation, now time.Time) ([]protocol.Reservation, error) {
		for i, r := range held {
			if r.ID == ref.ID && r.AgentID == agent {
				held[i].ExpiresAt = now.Add(time.Duration(ref.TTLS) * time.Second).UTC()
				got = held[i]
				return held, nil
			}
		}
		return nil, fmt.Errorf("renew %s in %s: %w", ref.ID, ref.Project, ErrNotFound)
	})
	return got, err
}

// Release gives one reservation up: agent's own, or anyone's for agent ""
// (an admin's).
func (s *Service) Release(ctx context.Context, agent string, ref protocol.ReservationRef) error {
	v := &domain.ValidationError{}
	checkProject(v, ref.Project)
	if err := v.Err(); err != nil {
		return err
	}
	var gone protocol.Reservation
	err := s.change(ctx, ref.Project, func(held []protocol.Reservation, _ time.Time) ([]protocol.Reservation, error) {
		for i, r := range held {
			if r.ID == ref.ID && (agent == "" || r.AgentID == agent) {
				gone = r
				return append(held[:i:i], held[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("release %s in %s: %w", ref.ID, ref.Project, ErrNotFound)
	})
	if err == nil {
		s.released(gone, "released")
	}
	return err
}

// ReleaseAgent gives up every reservation of an agent gone past the
// reconnect grace.
func (s *Service) ReleaseAgent(ctx context.Context, agent string) {
	for _, p := range s.projectsOf(agent) {
		var gone []protocol.Reservation
		err := s.change(ctx, p, func(held []protocol.Reservation, _ time.Time) ([]protocol.Reservation, error) {
			gone = gone[:0]
			kept := held[:0:0]
			for _, r := range held {
				if r.AgentID == agent {
					gone = append(gone, r)
				} else {
					kept = append(kept, r)
				}
			}
			return kept, nil
		})
		if err != nil {
			s.log.Warning().Err(err).Str("agent_id", agent).Str("project", p).Msg("reservations of a gone agent not released")
			continue
		}
		for _, r := range gone {
			s.released(r, "agent_gone")
		}
	}
}

// Sweep drops the expired reservations of every project, as a change.
func (s *Service) Sweep(ctx context.Context) {
	projects, err := s.store.Projects(ctx)
	if err != nil {
		s.log.Warning().Err(err).Msg("reservations not swept")
		return
	}
	for _, p := range projects {
		if err := s.change(ctx, p, func(held []protocol.Reservation, _ time.Time) ([]protocol.Reservation, error) {
			return held, nil
		}); err != nil {
			s.log.Warning().Err(err).Str("project", p).Msg("reservations not swept")
		}
	}
}

func (s *Service) released(r protocol.Reservation, why string) {
	s.tel.Emit("reservation.release", nil, map[string]any{"project": r.Project, "agent_id": r.AgentID,
		"reservation_id": r.ID, "reason": why})
}

// change applies fn to a project's live reservations and stores the
// result by compare-and-set, again on a race; expired ones are dropped
// (and said) on the way.
func (s *Service) change(ctx context.Context, project string, fn func([]protocol.Reservation, time.Time) ([]protocol.Reservation, error)) error {
	for range casAttempts {
		held, rev, err := s.read(ctx, project)
		if err != nil {
			return err
		}
		now := s.now()
		alive := live(held, now)
		next, err := fn(alive, now)
		if err != nil {
			return err
		}
		value := encode(next)
		if rev != 0 && bytes.Equal(value, encode(held)) {
			return nil // nothing changed: no write
		}
		err = s.store.Put(ctx, project, value, rev, lastExpiry(next, now).Sub(now))
		if errors.Is(err, broker.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		s.expired(held, alive)
		s.note(project, next)
		return nil
	}
	return fmt.Errorf("change reservations of %s: %d races in a row: %w", project, casAttempts, broker.ErrConflict)
}

func (s *Service) expired(held, alive []protocol.Reservation) {
	for _, r := range held {
		if !containsID(alive, r.ID) {
			s.tel.Emit("reservation.expire", nil, map[string]any{"project": r.Project, "agent_id": r.AgentID,
				"reservation_id": r.ID})
		}
	}
}

func encode(held []protocol.Reservation) []byte {
	b, _ := json.Marshal(held) // plain values: cannot fail
	return b
}

// lastExpiry is when the last of held expires (now, when there is none).
func lastExpiry(held []protocol.Reservation, now time.Time) time.Time {
	last := now
	for _, r := range held {
		if r.ExpiresAt.After(last) {
			last = r.ExpiresAt
		}
	}
	return last
}

func containsID(held []protocol.Reservation, id string) bool {
	for _, r := range held {
		if r.ID == id {
			return true
		}
	}
	return false
}
