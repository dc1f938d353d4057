package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/reservations"
)

// Reservations is what the reservation operations call (reservations.Service).
type Reservations interface {
	List(ctx context.Context, project string) ([]protocol.Reservation, error)
	Release(ctx context.Context, agent string, ref protocol.ReservationRef) error
}

// reservationHandlers answer the operators' reservation operations.
func (a *API) reservationHandlers() map[string]handler {
	return map[string]handler{
		ops.OpReservationList.Name: func(ctx context.Context, c call) Reply {
			var q ops.ReservationQuery
			if err := unmarshalOptional(c.body, &q); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"project": "repo"}`))
			}
			list, err := a.reservations.List(ctx, q.Project)
			if err != nil {
				return a.errorReply(ctx, err)
			}
			return Reply{http.StatusOK, ops.Reservations{Reservations: list, Count: len(list)}}
		},
		ops.OpReservationRelease.Name: func(ctx context.Context, c call) Reply {
			ref := protocol.ReservationRef{Project: c.params["project"], ID: c.params["id"]}
			err := a.reservations.Release(ctx, "", ref)
			if errors.Is(err, reservations.ErrNotFound) {
				return Reply{http.StatusNotFound, ErrorBody{Error: "reservation_not_found", Detail: err.Error()}}
			} else if err != nil {
				return a.errorReply(ctx, err)
			}
			a.log.Ctx(ctx).Notice().Str("project", ref.Project).Str("reservation_id", ref.ID).Str("by", c.who).
				Msg("reservation released by an operator")
			return Reply{http.StatusOK, ops.Released{Status: "released", Project: ref.Project, ID: ref.ID}}
		},
	}
}
