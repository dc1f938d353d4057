package bench

import (
	"sync"
	"sync/atomic"
	"time"
)

// progressEvery is how often a run reports its progress.
const progressEvery = 200 * time.Millisecond

// progress reports a run's stages to Options.Progress, if set.
type progress struct {
	fn         func(Progress)
	mode, sync string
}

// watch reports done() out of total until stop is called, then once more.
func (p *progress) watch(stage string, total int, done func() int) (stop func()) {
	if p == nil || p.fn == nil {
		return func() {}
	}
	start, quit := time.Now(), make(chan struct{})
	report := func() {
		p.fn(Progress{Mode: p.mode, Sync: p.sync, Stage: stage, Done: done(), Total: total, Elapsed: time.Since(start)})
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				report()
				return
			case <-tick.C:
				report()
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

// timed runs fn, which counts what it did, watching it; it returns the
// seconds fn took.
func (p *progress) timed(stage string, total int, fn func(*atomic.Int64) error) (float64, error) {
	var done atomic.Int64
	stop := p.watch(stage, total, func() int { return int(done.Load()) })
	start := time.Now()
	err := fn(&done)
	seconds := time.Since(start).Seconds()
	stop()
	return seconds, err
}
