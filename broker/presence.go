package broker

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// WatchAgentDisconnects calls fn with an agent's id and the server's
// reason as soon as the last connection of that agent closes (a replaced
// connection closing while a newer one lives is not reported). It reads
// the server's disconnect advisories on a system-account connection.
func (s *Server) WatchAgentDisconnects(fn func(agentID, reason string)) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Token(s.auth.sysSecret), nats.Name("agentcom-hub-system"))
	if err != nil {
		return nil, fmt.Errorf("connect system account: %w", err)
	}
	_, err = nc.Subscribe(fmt.Sprintf(ClientDisconnectT, GlobalAccount), func(m *nats.Msg) {
		var ev server.DisconnectEventMsg
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		id, ok := strings.CutPrefix(ev.Client.User, AgentUser(""))
		if ok && s.agentConnsBut(id, ev.Client.ID) == 0 {
			fn(id, ev.Reason)
		}
	})
	if err == nil {
		err = nc.Flush() // the server has the subscription: no early disconnect goes unseen
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to disconnect advisories: %w", err)
	}
	return nc, nil
}

// AgentConnections counts an agent's open connections.
func (s *Server) AgentConnections(agentID string) int { return s.agentConnsBut(agentID, 0) }

// agentConnsBut counts an agent's open connections other than cid (the
// one closing may still be listed while its advisory goes out).
func (s *Server) agentConnsBut(agentID string, cid uint64) int {
	cz, err := s.ns.Connz(&server.ConnzOptions{User: AgentUser(agentID)})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range cz.Conns {
		if c.Cid != cid {
			n++
		}
	}
	return n
}

// DisconnectAgent closes an agent's connections; with keepNewest, all but
// the most recent one (a second sidecar under the same id replaces the
// first). It returns how many it closed.
func (s *Server) DisconnectAgent(agentID string, keepNewest bool) int {
	cz, err := s.ns.Connz(&server.ConnzOptions{User: AgentUser(agentID), Sort: server.ByCid})
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
