package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nuid"
)

// fleet is a run's workers: in-process (the default) or sidecar
// processes. Each is an agent of its own, named for the run so that runs
// against one hub do not meet.
type fleet interface {
	// start lets the workers take work; it returns once all are connected.
	start(ctx context.Context) error
	// waitAll waits until n tasks this run submitted are completed.
	waitAll(ctx context.Context, n int) error
	// completed is how many are, as far as the fleet knows.
	completed() int
	// ids are the agents' ids, whose tokens the run made.
	ids() []string
	stop()
}

func newFleet(ctx context.Context, o Options, t *target, tr *tracker) (fleet, error) {
	names := agentNames(o.Workers)
	if o.Sidecars {
		f, err := newSidecars(ctx, o, t, names)
		if f == nil {
			return nil, err // not a nil *sidecars in a fleet
		}
		return f, err
	}
	ws, err := dialWorkers(ctx, t, names, o.Slots, o.Batch, tr)
	return &inproc{ws: ws, tr: tr}, err
}

func agentNames(m int) []string {
	run := nuid.Next()[:8]
	names := make([]string, m)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%d", run, i)
	}
	return names
}

// inproc is the in-process workers: the tracker sees their every push
// and completion.
type inproc struct {
	ws []*worker
	tr *tracker
}

func (f *inproc) start(ctx context.Context) error { return helloAll(ctx, f.ws) }

func (f *inproc) waitAll(ctx context.Context, n int) error {
	f.tr.expect(n)
	return f.tr.waitAll(ctx)
}

func (f *inproc) completed() int { return f.tr.doneCount() }

func (f *inproc) ids() []string {
	ids := make([]string, len(f.ws))
	for i, w := range f.ws {
		ids[i] = w.id
	}
	return ids
}

func (f *inproc) stop() {
	var wg sync.WaitGroup
	for _, w := range f.ws {
		wg.Go(w.stop)
	}
	wg.Wait()
}

// dialWorkers connects a worker per name. On error it returns those it
// connected.
func dialWorkers(ctx context.Context, t *target, names []string, slots int, batch bool, tr *tracker) ([]*worker, error) {
	ws := make([]*worker, 0, len(names))
	for _, id := range names {
		w, err := dialWorker(ctx, t, id, slots, batch, tr)
		if err != nil {
			return ws, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// helloAll says hello with every worker at once.
func helloAll(ctx context.Context, ws []*worker) error {
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { errs[i] = w.hello(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
