package lifecycle

import "sync"

// Gate lets work in until it is closed, and then waits for the work it
// let in: for request handlers and loops that a Stop must see finish.
type Gate struct {
	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	wg     sync.WaitGroup
}

// Enter counts a piece of work in, unless the gate is closed. Work that
// entered calls Leave when done.
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// Leave counts a piece of work out.
func (g *Gate) Leave() { g.wg.Done() }

// Close lets nothing more in.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// Wait returns once the work that entered has left.
func (g *Gate) Wait() { g.wg.Wait() }
