package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/workflows"
)

// goalHandlers answer the goal operations, and a task's timeline.
func (a *API) goalHandlers() map[string]handler {
	return map[string]handler{
		ops.OpTaskTimeline.Name: func(ctx context.Context, c call) Reply {
			id := c.params["id"]
			if !domain.ValidTaskID(id) {
				return a.errorReply(ctx, &domain.NotFoundError{TaskID: id})
			}
			events, err := a.store.Timeline(ctx, id)
			if err != nil {
				return a.errorReply(ctx, err)
			}
			return Reply{http.StatusOK, ops.Timeline{TaskID: id, Events: events}}
		},
		ops.OpGoalList.Name: func(context.Context, call) Reply {
			list := a.goals.List()
			return Reply{http.StatusOK, ops.Goals{Goals: list, Count: len(list)}}
		},
		ops.OpGoalCreate.Name: func(ctx context.Context, c call) Reply {
			var req ops.GoalRequest
			if err := json.Unmarshal(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"title": "ship 1.0"}`))
			}
			g, err := a.goals.Create(ctx, req.ID, req.Title, req.Description, c.who)
			if err != nil {
				return a.goalError(ctx, err)
			}
			return a.goalReply(ctx, g.ID, http.StatusCreated)
		},
		ops.OpGoalGet.Name: func(ctx context.Context, c call) Reply {
			return a.goalReply(ctx, c.params["id"], http.StatusOK)
		},
		ops.OpGoalCancel.Name: func(ctx context.Context, c call) Reply {
			var req ops.CancelRequest
			if err := unmarshalOptional(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody("reason must be a string in a JSON object"))
			}
			g, err := a.goals.Cancel(ctx, c.params["id"], c.who, req.Reason)
			if err != nil {
				return a.goalError(ctx, err)
			}
			return Reply{http.StatusOK, g}
		},
	}
}

func (a *API) goalReply(ctx context.Context, id string, status int) Reply {
	g, err := a.goals.Get(id)
	if err != nil {
		return a.goalError(ctx, err)
	}
	return Reply{status, g}
}

// goalError answers the goals' own errors with their status.
func (a *API) goalError(ctx context.Context, err error) Reply {
	switch {
	case errors.Is(err, workflows.ErrGoalNotFound):
		return Reply{http.StatusNotFound, ErrorBody{Error: "goal_not_found", Detail: err.Error()}}
	case errors.Is(err, workflows.ErrGoalExists):
		return Reply{http.StatusConflict, ErrorBody{Error: "goal_exists", Detail: err.Error()}}
	case errors.Is(err, workflows.ErrGoalCancelled):
		return Reply{http.StatusConflict, ErrorBody{Error: "goal_cancelled", Detail: err.Error()}}
	}
	return a.errorReply(ctx, err)
}

// scheduleHandlers answer the schedule operations.
func (a *API) scheduleHandlers() map[string]handler {
	return map[string]handler{
		ops.OpScheduleList.Name: func(context.Context, call) Reply {
			list := a.schedules.List()
			return Reply{http.StatusOK, ops.Schedules{Schedules: list, Count: len(list)}}
		},
		ops.OpScheduleCreate.Name: func(ctx context.Context, c call) Reply {
			var req ops.ScheduleRequest
			if err := json.Unmarshal(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"name": "nightly", "cron": "0 3 * * *", "task": {"description": "..."}}`))
			}
			s, err := a.schedules.Create(ctx, req, c.who)
			if err != nil {
				return a.scheduleError(ctx, err)
			}
			return Reply{http.StatusCreated, s}
		},
		ops.OpScheduleDelete.Name: func(ctx context.Context, c call) Reply {
			s, err := a.schedules.Delete(ctx, c.params["name"], c.who)
			if err != nil {
				return a.scheduleError(ctx, err)
			}
			return Reply{http.StatusOK, s}
		},
	}
}

func (a *API) scheduleError(ctx context.Context, err error) Reply {
	switch {
	case errors.Is(err, workflows.ErrScheduleNotFound):
		return Reply{http.StatusNotFound, ErrorBody{Error: "schedule_not_found", Detail: err.Error()}}
	case errors.Is(err, workflows.ErrScheduleExists):
		return Reply{http.StatusConflict, ErrorBody{Error: "schedule_exists", Detail: err.Error()}}
	}
	return a.errorReply(ctx, err)
}
