package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// SubmitBatch creates up to ops.MaxBatchSubmit tasks from one body. Every
// task is validated first; one invalid task refuses them all, with each
// problem named tasks[i].field. Then all go to the writer at once, so
// they share its durable writes, and the answer gives each its id, in the
// order given, and are queued in that order. Should the store fail part way, the answer is that failure,
// saying which tasks were stored.
func (a *API) SubmitBatch(ctx context.Context, who string, body []byte) Reply {
	ctx = logsink.Traced(ctx) // the answer tells its own task from an earlier submit's by it
	cmds, refs, err := decodeSubmitBatch(body, a.now())
	if err != nil {
		return a.errorReply(ctx, err)
	}
	if err := a.prepareBatch(ctx, who, cmds, refs); err != nil {
		return a.goalError(ctx, err)
	}
	all := make([]domain.Command, len(cmds))
	for i := range cmds {
		all[i] = cmds[i]
	}
	tasks, errs := a.svc.ExecuteAll(ctx, all) // in order: the queue keeps the batch's order
	if r, failed := a.batchFailure(ctx, tasks, errs); failed {
		return r
	}
	out := ops.SubmittedBatch{Count: len(tasks), Tasks: make([]ops.Submitted, len(tasks))}
	for i, t := range tasks {
		out.Tasks[i] = submitted(ctx, t)
	}
	a.log.Ctx(ctx).Info().Int("count", len(tasks)).Str("first_task_id", tasks[0].ID).Msg("tasks submitted")
	return Reply{http.StatusCreated, out}
}

// batchFailure answers the first failure of a batch, if any, adding to its
// detail which tasks were stored all the same.
func (a *API) batchFailure(ctx context.Context, tasks []*domain.Task, errs []error) (Reply, bool) {
	var stored []string
	var first error
	for i, err := range errs {
		if err == nil {
			stored = append(stored, tasks[i].ID)
		} else if first == nil {
			first = err
		}
	}
	if first == nil {
		return Reply{}, false
	}
	r := a.errorReply(ctx, first)
	if e, ok := r.Body.(ErrorBody); ok {
		e.Detail = strings.TrimSpace(fmt.Sprintf("%s (%d of %d tasks stored: %s)", e.Detail, len(stored), len(tasks),
			strings.Join(stored, ",")))
		r.Body = e
	}
	a.log.Ctx(ctx).Warning().Err(first).Int("stored", len(stored)).Int("count", len(tasks)).Msg("batch submit failed part way")
	return r, true
}

// decodeSubmitBatch reads {"tasks":[...]}: 1 to ops.MaxBatchSubmit
// bodies, each read as a single submit's; every problem of every task is
// reported, named tasks[i].field.
func decodeSubmitBatch(body []byte, now time.Time) ([]domain.SubmitTask, []string, error) {
	var req struct {
		Tasks []json.RawMessage `json:"tasks"`
	}
	v := &domain.ValidationError{}
	if err := json.Unmarshal(body, &req); err != nil {
		v.Add("body", "invalid_json", `the body must be {"tasks":[...]}: `+protocol.JSONProblem(err))
		return nil, nil, v
	}
	if n := len(req.Tasks); n == 0 || n > ops.MaxBatchSubmit {
		v.Add("tasks", "out_of_range", fmt.Sprintf("%d tasks given, 1 to %d", n, ops.MaxBatchSubmit))
		return nil, nil, v
	}
	cmds := make([]domain.SubmitTask, len(req.Tasks))
	refs := make([]string, len(req.Tasks))
	for i, raw := range req.Tasks {
		refs[i] = decodeRef(raw, i, v)
		cmd, err := decodeSubmit(raw, now)
		if ve, ok := err.(*domain.ValidationError); ok {
			for _, f := range ve.Fields {
				f.Field = fmt.Sprintf("tasks[%d].%s", i, f.Field)
				v.Fields = append(v.Fields, f)
			}
		}
		cmds[i] = cmd
	}
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	return cmds, refs, nil
}
