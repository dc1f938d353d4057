package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/protocol/ops"
)

// taskBody is what every bench task is: a short description, normal
// priority, no capabilities (any worker fits).
var taskBody = ops.SubmitRequest{Description: "agentcom bench task", Priority: "normal"}

// submitter is one admin client that submits a task at a time over the
// hub's NATS command (task.submit), on its own connection.
type submitter struct {
	c  *client.Client
	tr *tracker
}

func dialSubmitter(t *target, tr *tracker) (*submitter, error) {
	c, err := client.Dial(config.Client{Hub: t.url, Token: t.token})
	if err != nil {
		return nil, fmt.Errorf("dial submitter: %w", err)
	}
	return &submitter{c: c, tr: tr}, nil
}

// submit submits one task and notes it, with the time its submit was sent.
func (s *submitter) submit(ctx context.Context) (string, error) {
	t0 := time.Now()
	var out ops.Submitted
	if err := s.c.Do(ctx, ops.OpTaskSubmit, taskBody, &out); err != nil {
		return "", fmt.Errorf("submit task: %w", err)
	}
	s.tr.submit(out.TaskID, t0)
	return out.TaskID, nil
}

// quota hands out the run's submits: n in all (0: no limit), none after
// the deadline (zero: none).
type quota struct {
	left     atomic.Int64
	limited  bool
	deadline time.Time
}

func newQuota(n int, d time.Duration) *quota {
	q := &quota{limited: n > 0}
	q.left.Store(int64(n))
	if d > 0 {
		q.deadline = time.Now().Add(d)
	}
	return q
}

// take reports whether one more task may be submitted.
func (q *quota) take() bool {
	if !q.deadline.IsZero() && time.Now().After(q.deadline) {
		return false
	}
	return !q.limited || q.left.Add(-1) >= 0
}

// submitAll runs k submitters, each one task at a time, until the quota
// is used up. The first error stops them all.
func submitAll(ctx context.Context, t *target, k int, q *quota, tr *tracker) error {
	subs := make([]*submitter, 0, k)
	defer func() {
		for _, s := range subs {
			s.c.Close()
		}
	}()
	for range k {
		s, err := dialSubmitter(t, tr)
		if err != nil {
			return err
		}
		subs = append(subs, s)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() {
			for ctx.Err() == nil && q.take() {
				if _, err := s.submit(ctx); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}
