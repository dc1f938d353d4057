// Package messaging holds the messages agents and operators send each
// other (docs/protocol.md, messages): direct to one agent or broadcast to
// all, kept in the AGENTCOM_MESSAGES stream (bounded by age and count),
// delivered at once to connected agents and from their mailbox after a
// reconnect, acknowledged by sequence, and searchable with their threads.
// The sender is always who sent the request: an agent's subject, an
// operator's token name.
package messaging

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/telemetry"
)

// DefaultMailbox bounds what one inbox read answers (the original's 100).
const DefaultMailbox = 100

// Params are what the service works with.
type Params struct {
	Store *broker.MessageStore
	// Conn is the hub's connection, for pushes.
	Conn *nats.Conn
	// Online lists the connected agents, for broadcasts; IsOnline says
	// whether one is connected, for the others.
	Online    func() []string
	IsOnline  func(agentID string) bool
	Mailbox   int
	Log       logsink.Logger
	Telemetry *telemetry.Emitter
	Now       func() time.Time
}

// Service sends, delivers and reads messages.
type Service struct {
	p   Params
	log logsink.Logger

	mu      sync.Mutex
	threads map[string]string // message id -> thread id
}

// New returns the service; Load reads the threads of the kept messages.
func New(p Params) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Mailbox <= 0 {
		p.Mailbox = DefaultMailbox
	}
	return &Service{p: p, log: p.Log.Module("agents"), threads: map[string]string{}}
}

// Load notes the thread of every kept message.
func (s *Service) Load(ctx context.Context) error {
	return s.p.Store.Scan(ctx, []string{broker.MessagesAll}, 1, func(_ uint64, data []byte) bool {
		var m protocol.Message
		if json.Unmarshal(data, &m) == nil {
			s.threads[m.ID] = m.ThreadID
		}
		return true
	})
}

// threadOf is the thread a reply to id joins ("" for an unknown id).
func (s *Service) threadOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.threads[id]
}

func (s *Service) noteThread(m protocol.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.threads[m.ID] = m.ThreadID
}

// decode reads a stored message.
func decode(seq uint64, data []byte) (protocol.Message, bool) {
	var m protocol.Message
	if json.Unmarshal(data, &m) != nil {
		return m, false
	}
	m.Seq = seq
	return m, true
}

// subjectOf is where a message is stored: its recipient's subject, or the
// broadcast one.
func subjectOf(m protocol.Message) string {
	switch {
	case m.Channel != "":
		return broker.MessageChannel(m.Channel)
	case m.To == "":
		return broker.MessageBroadcast
	}
	return broker.MessageTo(m.To)
}

// push hands a message to a connected agent at once (best effort: the
// mailbox has it either way).
func (s *Service) push(agent string, b []byte) {
	if err := s.p.Conn.Publish(broker.Push(agent, broker.PushMessage), b); err != nil {
		s.log.Warning().Err(err).Str("agent_id", agent).Msg("message push not sent")
	}
}
