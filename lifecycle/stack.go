package lifecycle

import (
	"context"
	"fmt"
	"sync"
)

// Step is one part of a running whole: Start brings it up, Stop (given
// what is left of the shutdown's time) takes it down. Either may be nil.
type Step struct {
	Name  string
	Start func(ctx context.Context) error
	Stop  func(ctx context.Context)
}

// Stack starts steps in the order given and stops the ones that started
// in reverse: a step that never started is never stopped.
type Stack struct {
	mu      sync.Mutex
	started []Step
	stopped bool
}

// Start runs each step's Start in order and stops at the first error
// (returned as it is: each step's errors say what failed). The steps started so far stay started: Stop takes
// them down.
func (s *Stack) Start(ctx context.Context, steps ...Step) error {
	for _, step := range steps {
		if s.isStopped() {
			return fmt.Errorf("start %s: stopped", step.Name)
		}
		if step.Start != nil {
			if err := step.Start(ctx); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.started = append(s.started, step)
		s.mu.Unlock()
	}
	return nil
}

func (s *Stack) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Stop stops every started step, the last started first. Safe to call
// twice: the second call does nothing.
func (s *Stack) Stop(ctx context.Context) {
	s.mu.Lock()
	started := s.started
	s.started, s.stopped = nil, true
	s.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		if stop := started[i].Stop; stop != nil {
			stop(ctx)
		}
	}
}
