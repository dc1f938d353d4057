package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"
)

// Run validates o and runs its mode once for each sync setting, in turn.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	if o.Log != nil { // the hub and every sidecar write to it at once
		o.Log = &lockedWriter{w: o.Log}
	}
	syncs, _ := o.Syncs()
	rep := Report{CPUs: runtime.NumCPU()}
	for _, s := range syncs {
		res, err := runOne(ctx, o, s)
		if err != nil {
			return rep, fmt.Errorf("run %s with sync %s: %w", o.Mode, s, err)
		}
		rep.Runs = append(rep.Runs, res)
	}
	return rep, nil
}

// runOne starts (or dials) the hub, runs the mode, stops the hub, then
// measures raw JetStream for the same number of messages.
func runOne(ctx context.Context, o Options, sync string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	t, err := openTarget(ctx, o, sync)
	if err != nil {
		return Result{}, err
	}
	prog := &progress{fn: o.Progress, mode: o.Mode, sync: sync}
	res, err := runMode(ctx, o, t, prog)
	if err == nil && t.embedded {
		res.Memory = ProcessMemory(0)
		err = checkCompleted(ctx, t, res.Tasks)
	}
	t.stop()
	if err != nil {
		return Result{}, err
	}
	res.Sync, res.Target = sync, "embedded"
	if !t.embedded {
		res.Target = t.url
	}
	if o.Raw && res.Tasks > 0 {
		if res.Raw, err = measureRaw(ctx, o.Dir, sync, res.Tasks, prog); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func openTarget(ctx context.Context, o Options, sync string) (*target, error) {
	if o.Hub != "" {
		return remoteTarget(o.Hub, o.Token)
	}
	return startEmbedded(ctx, o.Dir, sync, o.Log)
}

// checkCompleted holds a fresh embedded hub to what the workers saw: it
// completed exactly the run's tasks.
func checkCompleted(ctx context.Context, t *target, n int) error {
	st, err := t.stats(ctx)
	if err != nil {
		return err
	}
	if got := st.ByStatus["completed"]; got != n || st.Total != n {
		return fmt.Errorf("the hub counts %d tasks, %d completed; the workers completed %d", st.Total, got, n)
	}
	return nil
}

// runMode runs one mode with its workers and submitters.
func runMode(ctx context.Context, o Options, t *target, prog *progress) (Result, error) {
	tr := newTracker()
	f, err := newFleet(ctx, o, t, tr)
	if f != nil {
		if !t.embedded {
			defer revokeTokens(t, f.ids()) // after the workers stop
		}
		defer f.stop()
	}
	if err != nil {
		return Result{}, err
	}
	var res Result
	switch o.Mode {
	case ModeBurnDown:
		res, err = burnDown(ctx, o, t, f, tr, prog)
	case ModeContinuous:
		res, err = continuous(ctx, o, t, f, tr, prog)
	default:
		res, err = latency(ctx, o, t, f, tr, prog)
	}
	res.Mode, res.Workers, res.Slots, res.Submitters, res.Sidecars = o.Mode, o.Workers, o.Slots, o.Submitters, o.Sidecars
	res.Batch = o.Batch && !o.Sidecars
	res.Declines, res.Aborts, res.Dropped = tr.counts()
	return res, err
}

// burnDown queues every task, then starts every worker and times them
// until the queue is worked off.
func burnDown(ctx context.Context, o Options, t *target, f fleet, tr *tracker, prog *progress) (Result, error) {
	n := o.tasks()
	stop := prog.watch(StagePrefill, n, tr.submittedCount)
	t0 := time.Now()
	err := submitAll(ctx, t, o.Submitters, newQuota(n, 0), tr)
	prefill := time.Since(t0)
	stop()
	if err != nil {
		return Result{}, err
	}
	stop = prog.watch(StageRun, n, f.completed)
	defer stop()
	start := time.Now()
	if err := f.start(ctx); err != nil {
		return Result{}, err
	}
	if err := f.waitAll(ctx, n); err != nil {
		return Result{}, err
	}
	res := throughput(n, time.Since(start))
	res.SubmitPerS = rate(n, prefill.Seconds())
	return res, nil
}

// continuous submits and works at once: the workers start first, then
// the submitters run for the duration or the task count, and the run
// ends when every task they submitted is completed.
func continuous(ctx context.Context, o Options, t *target, f fleet, tr *tracker, prog *progress) (Result, error) {
	if err := f.start(ctx); err != nil {
		return Result{}, err
	}
	n := o.tasks()
	stop := prog.watch(StageRun, n, f.completed)
	defer stop()
	start := time.Now()
	if err := submitAll(ctx, t, o.Submitters, newQuota(n, o.Duration), tr); err != nil {
		return Result{}, err
	}
	n = tr.submittedCount()
	if n == 0 {
		return Result{}, errors.New("no task was submitted within --duration")
	}
	if err := f.waitAll(ctx, n); err != nil {
		return Result{}, err
	}
	res := throughput(n, time.Since(start))
	res.Latency = distribution(tr.latencies()) // none from sidecars: their pushes are not seen
	return res, nil
}

// latency submits one task at a time to idle in-process workers and
// waits for it to be pushed and completed before the next.
func latency(ctx context.Context, o Options, t *target, f fleet, tr *tracker, prog *progress) (Result, error) {
	if err := f.start(ctx); err != nil {
		return Result{}, err
	}
	s, err := dialSubmitter(t, tr)
	if err != nil {
		return Result{}, err
	}
	defer s.c.Close()
	n := o.tasks()
	tr.expect(n)
	stop := prog.watch(StageRun, n, tr.doneCount)
	defer stop()
	start := time.Now()
	for range n {
		id, err := s.submit(ctx)
		if err != nil {
			return Result{}, err
		}
		if err := tr.waitTask(ctx, id); err != nil {
			return Result{}, err
		}
	}
	res := throughput(n, time.Since(start))
	res.Latency = distribution(tr.latencies())
	return res, nil
}

func throughput(n int, took time.Duration) Result {
	return Result{Tasks: n, Seconds: took.Seconds(), TasksPerS: rate(n, took.Seconds())}
}

// revokeTokens deletes the tokens a run made on a running hub.
func revokeTokens(t *target, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		_ = t.revoke(ctx, id)
	}
}

// lockedWriter writes one Write at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
