package hub

import "sync"

// gate lets work in until it is closed, and then waits for the work it
// let in: for request handlers and loops that Stop must see finish.
type gate struct {
	mu     sync.Mutex // guards closed and wg.Add against close
	closed bool
	wg     sync.WaitGroup
}

// enter counts a piece of work in, unless the gate is closed. Work that
// entered calls leave when done.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *gate) leave() { g.wg.Done() }

// close lets nothing more in.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// wait returns once the work that entered has left.
func (g *gate) wait() { g.wg.Wait() }
