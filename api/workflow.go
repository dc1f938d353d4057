package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/writer"
)

// HeaderIdempotencyKey carries a submit's idempotency key, over HTTP and
// NATS alike (the body's idempotency_key wins).
const HeaderIdempotencyKey = "Idempotency-Key"

type idempotencyCtxKey struct{}

// withIdempotencyKey notes a request's Idempotency-Key header.
func withIdempotencyKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return context.WithValue(ctx, idempotencyCtxKey{}, key)
}

func idempotencyKeyOf(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyCtxKey{}).(string)
	return k
}

// prepare gives a decoded submit (the i-th of its request) its submitter,
// request id, task id and the dependencies it waits on. inBatch are the
// ids of the tasks submitted with it.
func (a *API) prepare(ctx context.Context, who string, cmd *domain.SubmitTask, i int, inBatch map[string]bool) error {
	cmd.SubmittedBy, cmd.RequestID = who, logsink.RequestID(ctx)
	if k := idempotencyKeyOf(ctx); k != "" && cmd.Flow.IdempotencyKey == "" && inBatch == nil {
		if err := checkKey(k); err != nil {
			return err
		}
		cmd.Flow.IdempotencyKey = k
	}
	if cmd.ID == "" {
		id, err := a.taskID(ctx, who, cmd.Flow.IdempotencyKey, i)
		if err != nil {
			return err
		}
		cmd.ID = id
	}
	if err := a.waitsOn(cmd, inBatch); err != nil {
		return err
	}
	if g := cmd.Flow.GoalID; g != "" && a.goals != nil { // last: a refused submit creates no goal
		return a.goals.Join(ctx, g, who)
	}
	return nil
}

func checkKey(key string) error {
	v := &domain.ValidationError{}
	(&domain.Workflow{IdempotencyKey: key}).Check(v, "")
	for i := range v.Fields {
		v.Fields[i].Field = "Idempotency-Key"
	}
	return v.Err()
}

// taskID is a submit's task id: the one its idempotency key stands for;
// else one derived from its request id (the submits trace their ctx), so a
// command retried after a lost answer names the task it made the first time.
func (a *API) taskID(ctx context.Context, who, key string, i int) (string, error) {
	if key != "" && a.idempotency != nil {
		return a.idempotency.Claim(ctx, who, key, writer.NewTaskID())
	}
	return derivedID(who, logsink.RequestID(ctx), i), nil
}

// derivedID is "task-" and 16 hex digits of the SHA-256 of who, the
// request id and the place in the request.
func derivedID(who, rid string, i int) string {
	var buf [256]byte
	b := append(buf[:0], who...)
	b = append(append(append(b, 0), rid...), 0)
	sum := sha256.Sum256(strconv.AppendInt(b, int64(i), 10))
	var out [5 + 16]byte
	copy(out[:], "task-")
	hex.Encode(out[5:], sum[:8])
	return string(out[:])
}

// waitsOn checks that every dependency is a stored task (or one of the
// batch) and notes the ones not complete yet: the task waits on them.
func (a *API) waitsOn(cmd *domain.SubmitTask, inBatch map[string]bool) error {
	cmd.Open = nil
	if len(cmd.Flow.DependsOn) == 0 {
		return nil
	}
	v := &domain.ValidationError{}
	for j, id := range cmd.Flow.DependsOn {
		if inBatch[id] {
			cmd.Open = append(cmd.Open, id)
			continue
		}
		t, _, ok := a.tasks.Get(id)
		if !ok {
			v.Add(fmt.Sprintf("depends_on[%d]", j), "unknown", fmt.Sprintf("no task %s", id))
			continue
		}
		if t.Status != domain.StatusCompleted {
			cmd.Open = append(cmd.Open, id)
		}
	}
	return v.Err()
}

// duplicate reports whether t was made by an earlier submit than ctx's
// (its idempotency key's first).
func duplicate(ctx context.Context, t *domain.Task) bool {
	return t.RequestID != logsink.RequestID(ctx)
}

// decodeRef reads a batch task's ref: its name for the others'
// depends_on.
func decodeRef(raw json.RawMessage, i int, v *domain.ValidationError) string {
	obj := map[string]json.RawMessage{}
	if json.Unmarshal(raw, &obj) != nil {
		return "" // decodeSubmit reports it
	}
	var ref string
	sub := &domain.ValidationError{}
	decodeString(obj, "ref", sub, &ref)
	for _, f := range sub.Fields {
		v.Add(fmt.Sprintf("tasks[%d].%s", i, f.Field), f.Error, f.Detail)
	}
	return ref
}

// prepareBatch gives a batch's tasks their ids, turns refs in depends_on
// into those ids, refuses a cycle, and prepares each task.
func (a *API) prepareBatch(ctx context.Context, who string, cmds []domain.SubmitTask, refs []string) error {
	v := &domain.ValidationError{}
	byRef, ids, keys := map[string]int{}, map[string]bool{}, map[string]bool{}
	for i := range cmds {
		if k := cmds[i].Flow.IdempotencyKey; k != "" {
			if keys[k] {
				v.Add(fmt.Sprintf("tasks[%d].idempotency_key", i), "duplicate", "the batch names this key twice")
			}
			keys[k] = true
		}
		id, err := a.taskID(ctx, who, cmds[i].Flow.IdempotencyKey, i)
		if err != nil {
			return err
		}
		cmds[i].ID, ids[id] = id, true
		if r := refs[i]; r != "" {
			if _, dup := byRef[r]; dup {
				v.Add(fmt.Sprintf("tasks[%d].ref", i), "duplicate", fmt.Sprintf("ref %q is used twice", r))
			}
			byRef[r] = i
		}
	}
	for i := range cmds {
		for j, d := range cmds[i].Flow.DependsOn {
			if k, ok := byRef[d]; ok {
				cmds[i].Flow.DependsOn[j] = cmds[k].ID
			}
		}
	}
	if f, ok := cycle(cmds); ok {
		v.Add(f, "cycle", "the batch's dependencies form a cycle")
	}
	for i := range cmds {
		err := a.prepare(ctx, who, &cmds[i], i, ids)
		if ve, ok := err.(*domain.ValidationError); ok {
			for _, f := range ve.Fields {
				v.Add(fmt.Sprintf("tasks[%d].%s", i, f.Field), f.Error, f.Detail)
			}
		} else if err != nil {
			return err
		}
	}
	return v.Err()
}

// cycle finds a dependency cycle among a batch's tasks and names the
// first edge of it that it met: tasks[i].depends_on[j].
func cycle(cmds []domain.SubmitTask) (string, bool) {
	index := make(map[string]int, len(cmds))
	for i, c := range cmds {
		index[c.ID] = i
	}
	const (
		unseen = iota
		open
		closed
	)
	state := make([]int, len(cmds))
	var visit func(i int) (string, bool)
	visit = func(i int) (string, bool) {
		state[i] = open
		for j, d := range cmds[i].Flow.DependsOn {
			k, ok := index[d]
			if !ok {
				continue
			}
			if state[k] == open || (k == i) {
				return fmt.Sprintf("tasks[%d].depends_on[%d]", i, j), true
			}
			if state[k] == unseen {
				if f, found := visit(k); found {
					return f, true
				}
			}
		}
		state[i] = closed
		return "", false
	}
	for i := range cmds {
		if state[i] == unseen {
			if f, found := visit(i); found {
				return f, true
			}
		}
	}
	return "", false
}
