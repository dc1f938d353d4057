package agents

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/reservations"
)

// sweepReservationsEvery spaces the sweeps of expired reservations (each
// lists every project); a reserve drops the expired ones of its project
// at once anyway.
const sweepReservationsEvery = 30 * time.Second

// reservation answers the reserve, renew and release verbs for the agent
// of the subject: it reserves as itself, and renews and releases only its
// own reservations.
func (c *Coordinator) reservation(ctx context.Context, agentID, verb string, data []byte) (int, any) {
	switch verb {
	case broker.VerbReserve:
		return decodeThen(data, func(r protocol.Reserve) (int, any) {
			got, in, err := c.reserved.Reserve(ctx, agentID, r)
			if errors.Is(err, reservations.ErrConflict) {
				return http.StatusConflict, protocol.ReserveConflict{Error: protocol.CodeReservationConflict,
					Detail: err.Error(), Conflicts: in}
			}
			return c.reservationResult(got, err)
		})
	case broker.VerbRenew:
		return decodeThen(data, func(ref protocol.ReservationRef) (int, any) {
			return c.reservationResult(c.reserved.Renew(ctx, agentID, ref))
		})
	}
	return decodeThen(data, func(ref protocol.ReservationRef) (int, any) {
		return c.reservationResult(protocol.Reservation{ID: ref.ID, Project: ref.Project}, c.reserved.Release(ctx, agentID, ref))
	})
}

func (c *Coordinator) reservationResult(r protocol.Reservation, err error) (int, any) {
	if errors.Is(err, reservations.ErrNotFound) {
		return http.StatusNotFound, protocol.Error{Error: protocol.CodeNotFound, Detail: err.Error()}
	}
	if err != nil {
		return c.result(nil, err)
	}
	return http.StatusOK, r
}

// sweepReservations releases the reservations of an agent gone past the
// reconnect grace, and now and then drops the expired ones everywhere.
func (c *Coordinator) sweepReservations(ctx context.Context, gone []string) {
	if c.reserved == nil {
		return
	}
	for _, id := range gone {
		c.reserved.ReleaseAgent(ctx, id)
	}
	// Wall time, not the injected clock: this paces the sweeps; expiry
	// itself reads the hub's clock.
	if now := time.Now(); now.Sub(c.swept) >= sweepReservationsEvery {
		c.swept = now
		c.reserved.Sweep(ctx)
	}
}
