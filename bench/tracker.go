package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// tracker notes when each task was submitted, pushed to a worker and
// completed, and tells waiters when the run's tasks are all completed.
// Submits and pushes race (a worker may hear of a task before its
// submitter hears the answer), so each is kept on its own.
type tracker struct {
	mu        sync.Mutex
	submitted map[string]time.Time // when its submit was sent
	assigned  map[string]time.Time // when its first push arrived
	completed map[string]bool      // a complete was answered 200
	matched   int                  // submitted and completed
	expected  int                  // 0 until known
	declines  int
	aborts    int
	dropped   int // assignments a refused accept or complete dropped
	err       error
	changed   chan struct{} // closed and replaced at every change
}

func newTracker() *tracker {
	return &tracker{submitted: map[string]time.Time{}, assigned: map[string]time.Time{},
		completed: map[string]bool{}, changed: make(chan struct{})}
}

// update runs fn under the lock and wakes every waiter.
func (t *tracker) update(fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn()
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *tracker) submit(id string, at time.Time) {
	t.update(func() {
		t.submitted[id] = at
		if t.completed[id] {
			t.matched++
		}
	})
}

func (t *tracker) assign(id string, at time.Time) {
	t.update(func() {
		if _, ok := t.assigned[id]; !ok {
			t.assigned[id] = at
		}
	})
}

func (t *tracker) complete(id string) {
	t.update(func() {
		if t.completed[id] {
			return
		}
		t.completed[id] = true
		if _, ok := t.submitted[id]; ok {
			t.matched++
		}
	})
}

// count adds one to a counter of the tracker's.
func (t *tracker) count(c *int) { t.update(func() { *c++ }) }

// fail records the first error a worker or submitter met: it ends the run.
func (t *tracker) fail(err error) {
	t.update(func() {
		if t.err == nil {
			t.err = err
		}
	})
}

// expect sets how many submitted tasks the run waits for.
func (t *tracker) expect(n int) { t.update(func() { t.expected = n }) }

// doneCount is how many submitted tasks are completed.
func (t *tracker) doneCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.matched
}

// submittedCount is how many submits were answered.
func (t *tracker) submittedCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.submitted)
}

// waitFor waits until cond holds (it runs under the lock), a worker
// failed, or ctx ends.
func (t *tracker) waitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		t.mu.Lock()
		ok, err, ch := cond(), t.err, t.changed
		t.mu.Unlock()
		switch {
		case err != nil:
			return err
		case ok:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		}
	}
}

// waitAll waits until every expected task is completed.
func (t *tracker) waitAll(ctx context.Context) error {
	return t.waitFor(ctx, "every task completed", func() bool { return t.expected > 0 && t.matched >= t.expected })
}

// waitTask waits until a task was pushed and completed.
func (t *tracker) waitTask(ctx context.Context, id string) error {
	return t.waitFor(ctx, "task "+id, func() bool {
		_, pushed := t.assigned[id]
		return pushed && t.completed[id]
	})
}

// latencies are, in ms, from submit to push for every task seen both ways.
func (t *tracker) latencies() []float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]float64, 0, len(t.submitted))
	for id, t0 := range t.submitted {
		if t1, ok := t.assigned[id]; ok {
			out = append(out, float64(t1.Sub(t0).Microseconds())/1000)
		}
	}
	return out
}

// counts are the declines, aborts and dropped assignments.
func (t *tracker) counts() (declines, aborts, dropped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.declines, t.aborts, t.dropped
}
