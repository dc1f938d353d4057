package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Lanes give each connected agent a hub-side connection of its own for
// its requests (agentcom.agent.<id>.*). With one connection for every
// agent, one agent's flood of large messages queues ahead of every other
// agent's request on it; with a lane each, the flood waits in its own
// lane, and the server stalls only the flooder when its lane falls behind.
//
// A lane opens when the agent authenticates, before its connection is
// let in, so its first request already finds the hub listening. It
// closes once the agent has had no connection for a while (Sweep).
type Lanes struct {
	srv     *Server
	queue   string
	handler nats.MsgHandler
	mu      sync.Mutex
	open    map[string]*lane
	closed  bool
}

type lane struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	authed time.Time // the agent's last authentication
	gone   bool      // the agent's last connection closed since
}

// ErrLanesClosed is Open's answer once Close has run.
var ErrLanesClosed = errors.New("agent lanes closed")

// AgentLanes returns the lanes that deliver agents' requests to handler,
// in queue group queue. None is open until Open; call Close at the end.
func (s *Server) AgentLanes(queue string, handler nats.MsgHandler) *Lanes {
	return &Lanes{srv: s, queue: queue, handler: handler, open: map[string]*lane{}}
}

// Open makes sure agentID has its lane, subscribed and known to the
// server when it returns. It is called from the authenticator, on the
// server's goroutine of the connecting agent.
func (l *Lanes) Open(agentID string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLanesClosed
	}
	if ln, ok := l.open[agentID]; ok && !ln.nc.IsClosed() {
		ln.authed, ln.gone = now, false
		return nil
	}
	nc, err := l.srv.ConnectInProcess(l.srv.auth.HubSecret(), "agentcom-hub-lane-"+agentID)
	if err != nil {
		return fmt.Errorf("open lane of agent %s: %w", agentID, err)
	}
	sub, err := nc.QueueSubscribe(AgentRequests(agentID), l.queue, l.handler)
	if err != nil {
		nc.Close()
		return fmt.Errorf("subscribe lane of agent %s: %w", agentID, err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return fmt.Errorf("flush lane of agent %s: %w", agentID, err)
	}
	l.open[agentID] = &lane{nc: nc, sub: sub, authed: now}
	return nil
}

// Gone notes that agentID's last connection closed.
func (l *Lanes) Gone(agentID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln, ok := l.open[agentID]; ok {
		ln.gone = true
	}
}

// Sweep closes the lanes of agents gone and not authenticated again for
// idle, and still without a connection; it returns how many it closed.
// The idle wait keeps a lane open for a connection that authenticated
// but is not listed by the server yet.
func (l *Lanes) Sweep(now time.Time, idle time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id, ln := range l.open {
		if ln.gone && now.Sub(ln.authed) >= idle && l.srv.KnownConnections(id) == 0 {
			ln.nc.Close()
			delete(l.open, id)
			n++
		}
	}
	return n
}

// Len is how many lanes are open.
func (l *Lanes) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// Unsubscribe stops every lane taking requests and opens no more; the
// connections stay, so that requests already taken can be answered.
// Safe to call twice.
func (l *Lanes) Unsubscribe() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, ln := range l.open {
		_ = ln.sub.Unsubscribe()
	}
}

// Close closes every lane's connection. Safe to call twice.
func (l *Lanes) Close() {
	l.mu.Lock()
	l.closed = true
	open := l.open
	l.open = map[string]*lane{}
	l.mu.Unlock()
	for _, ln := range open {
		ln.nc.Close()
	}
}

// SetAgentAdmission makes the server ask admit before it lets an agent
// in; an error refuses the connection (Authenticator.SetAgentAdmission).
func (s *Server) SetAgentAdmission(admit func(agentID string) error) { s.auth.SetAgentAdmission(admit) }

// ConnectedAgents lists the agents with at least one open connection.
func (s *Server) ConnectedAgents() []string {
	set, _ := s.ConnectedAgentSet()
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	return ids
}

// ConnectedAgentSet is the set of agents with at least one open
// connection: one pass over the server's connections, a page at a time.
func (s *Server) ConnectedAgentSet() (map[string]bool, error) {
	set := map[string]bool{}
	err := s.eachAgentConn(func(user string, _ uint64) { set[strings.TrimPrefix(user, AgentUser(""))] = true })
	return set, err
}
