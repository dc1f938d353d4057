package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// WatchAgentDisconnects calls fn with an agent's id and the server's
// reason as soon as the last connection of that agent closes (a replaced
// connection closing while a newer one lives is not reported). It reads
// the server's connect and disconnect advisories on a system-account
// connection and keeps its own count of each agent's connections, so an
// advisory costs O(1) however many clients there are. onErr hears of
// advisories the connection could not keep up with (nil: none).
func (s *Server) WatchAgentDisconnects(fn func(agentID, reason string), onErr func(error)) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Token(s.auth.sysSecret), nats.Name("agentcom-hub-system"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if onErr != nil {
				onErr(fmt.Errorf("read connection advisories: %w", err))
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("connect system account: %w", err)
	}
	if err := s.watchConns(nc, fn); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// watchConns subscribes to the advisories, then counts the connections
// already open, so none opened or closed in between goes unseen. Both
// advisories come on one subscription, in the server's order: a newer
// connection is counted before an older one's close is read.
func (s *Server) watchConns(nc *nats.Conn, fn func(agentID, reason string)) error {
	live := newLiveConns()
	s.live.Store(live)
	sub, err := nc.Subscribe(fmt.Sprintf(ClientEventsT, GlobalAccount), live.handler(fn))
	if err == nil {
		// A storm of closes must queue, not be dropped as a slow consumer.
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush() // the server has the subscription
	}
	if err != nil {
		return fmt.Errorf("subscribe to connection advisories: %w", err)
	}
	err = s.eachAgentConn(live.opened)
	live.listed()
	if err != nil {
		return fmt.Errorf("count agent connections: %w", err)
	}
	return nil
}

// eachAgentConn calls fn with the user and id of every open agent
// connection, reading the server's list a page at a time.
func (s *Server) eachAgentConn(fn func(user string, cid uint64)) error {
	const page = 4096
	for offset := 0; ; offset += page {
		cz, err := s.ns.Connz(&server.ConnzOptions{Offset: offset, Limit: page, Sort: server.ByCid, Username: true})
		if err != nil {
			return fmt.Errorf("list connections: %w", err)
		}
		for _, c := range cz.Conns {
			if strings.HasPrefix(c.AuthorizedUser, AgentUser("")) {
				fn(c.AuthorizedUser, c.Cid)
			}
		}
		if len(cz.Conns) < page {
			return nil
		}
	}
}

// liveConns is each agent's open connections as the advisories tell.
type liveConns struct {
	mu      sync.Mutex
	byAgent map[string]map[uint64]struct{} // by user name
	// early are connections whose close was read before they were counted
	// (it came between subscribing and listing them): the listing must
	// not count them. Nil once the listing is done.
	early map[uint64]struct{}
}

// listed ends the listing of the connections open before the watch.
func (l *liveConns) listed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.early = nil
}

func newLiveConns() *liveConns {
	return &liveConns{byAgent: map[string]map[uint64]struct{}{}, early: map[uint64]struct{}{}}
}

// handler reads connect and disconnect advisories into l and calls fn
// when an agent's last connection closed.
func (l *liveConns) handler(fn func(agentID, reason string)) nats.MsgHandler {
	connect, disconnect := fmt.Sprintf(ClientConnectT, GlobalAccount), fmt.Sprintf(ClientDisconnectT, GlobalAccount)
	return func(m *nats.Msg) {
		var ev server.DisconnectEventMsg // a connect advisory has the same client field
		if (m.Subject != connect && m.Subject != disconnect) || json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		if m.Subject == connect {
			l.opened(ev.Client.User, ev.Client.ID)
		} else if l.closed(ev.Client.User, ev.Client.ID) {
			fn(strings.TrimPrefix(ev.Client.User, AgentUser("")), ev.Reason)
		}
	}
}

// opened counts a connection of an agent user; others are ignored.
func (l *liveConns) opened(user string, cid uint64) {
	if !strings.HasPrefix(user, AgentUser("")) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.early[cid]; ok {
		delete(l.early, cid)
		return
	}
	if l.byAgent[user] == nil {
		l.byAgent[user] = map[uint64]struct{}{}
	}
	l.byAgent[user][cid] = struct{}{}
}

// closed forgets a connection and reports whether it was the agent's last.
func (l *liveConns) closed(user string, cid uint64) bool {
	if !strings.HasPrefix(user, AgentUser("")) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	conns := l.byAgent[user]
	if _, ok := conns[cid]; !ok && l.early != nil {
		l.early[cid] = struct{}{}
	}
	delete(conns, cid)
	if len(conns) > 0 {
		return false
	}
	delete(l.byAgent, user)
	return true
}

func (l *liveConns) count(user string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byAgent[user])
}

// AgentConnections counts an agent's open connections, asking the server
// (it walks every connection: not for a path taken per disconnect).
func (s *Server) AgentConnections(agentID string) int {
	cz, err := s.ns.Connz(&server.ConnzOptions{User: AgentUser(agentID)})
	if err != nil {
		return 0
	}
	return len(cz.Conns)
}

// KnownConnections counts an agent's open connections as the advisories
// WatchAgentDisconnects reads have told: in O(1), a moment behind the
// server.
// Without a watch it asks the server.
func (s *Server) KnownConnections(agentID string) int {
	if live := s.live.Load(); live != nil {
		return live.count(AgentUser(agentID))
	}
	return s.AgentConnections(agentID)
}

// DisconnectAgent closes an agent's connections; with keepNewest, all but
// the most recent one (a second sidecar under the same id replaces the
// first). It returns how many it closed.
func (s *Server) DisconnectAgent(agentID string, keepNewest bool) int {
	return s.disconnectUser(AgentUser(agentID), keepNewest)
}

// DisconnectToken closes every connection made with a revoked or
// replaced token of any role, and returns how many it closed.
func (s *Server) DisconnectToken(rec TokenRecord) int {
	return s.disconnectUser(UserOf(Identity{Name: rec.Name, Role: rec.Role}), false)
}

func (s *Server) disconnectUser(user string, keepNewest bool) int {
	cz, err := s.ns.Connz(&server.ConnzOptions{User: user, Sort: server.ByCid})
	if err != nil || len(cz.Conns) == 0 {
		return 0
	}
	conns := cz.Conns
	if keepNewest {
		conns = conns[:len(conns)-1]
	}
	for _, c := range conns {
		_ = s.ns.DisconnectClientByID(c.Cid)
	}
	return len(conns)
}
