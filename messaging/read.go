package messaging

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// Inbox is what waits for the agent: its direct messages and the
// broadcasts (not its own) after its cursor, oldest first, the last
// mailbox-bound of them.
func (s *Service) Inbox(ctx context.Context, agent string) (protocol.Inbox, error) {
	cursor, _, err := s.p.Store.Cursor(ctx, agent)
	if err != nil {
		return protocol.Inbox{}, err
	}
	out := protocol.Inbox{Messages: []protocol.Message{}, Cursor: cursor}
	joined, err := s.Subscriptions(ctx, agent)
	if err != nil {
		return out, err
	}
	filters := []string{broker.MessageTo(agent), broker.MessageBroadcast}
	for _, c := range joined {
		filters = append(filters, broker.MessageChannel(c))
	}
	err = s.p.Store.Scan(ctx, filters, cursor+1,
		func(seq uint64, data []byte) bool {
			if m, ok := decode(seq, data); ok && m.From != agent {
				out.Messages = append(out.Messages, m)
			}
			return true
		})
	if n := len(out.Messages); n > s.p.Mailbox {
		s.expired(agent, "mailbox_bound", n-s.p.Mailbox)
		out.Messages = out.Messages[n-s.p.Mailbox:]
	}
	if n := len(out.Messages); n > 0 && err == nil {
		s.p.Telemetry.Emit("message.mailbox", map[string]float64{"messages": float64(n)}, map[string]any{"agent_id": agent})
	}
	return out, err
}

// expired reports n messages the agent will never read: past its
// mailbox's bound.
func (s *Service) expired(agent, reason string, n int) {
	s.p.Telemetry.Emit("message.expire", map[string]float64{"messages": float64(n)},
		map[string]any{"agent_id": agent, "reason": reason})
	s.log.Warning().Str("agent_id", agent).Int("messages", n).Str("reason", reason).
		Msg("unacknowledged messages dropped from a mailbox")
}

// Ack moves the agent's cursor to seq (never back).
func (s *Service) Ack(ctx context.Context, agent string, seq uint64) (uint64, error) {
	for range 20 {
		cursor, rev, err := s.p.Store.Cursor(ctx, agent)
		if err != nil || seq <= cursor {
			return cursor, err
		}
		err = s.p.Store.SetCursor(ctx, agent, seq, rev)
		if errors.Is(err, broker.ErrConflict) {
			continue
		}
		if err == nil {
			s.p.Telemetry.Emit("message.ack", nil, map[string]any{"agent_id": agent, "seq": seq})
		}
		return seq, err
	}
	return 0, broker.ErrConflict
}

// Query filters the kept messages; empty fields match all. After is a
// sequence cursor: the page starts past it.
type Query struct {
	From, To, Thread, Text string
	Since, Until           time.Time
	After                  uint64
	Limit                  int
}

// Search returns one page of the messages that match q, oldest first, and
// the cursor of the next page (0: none).
func (s *Service) Search(ctx context.Context, q Query) ([]protocol.Message, uint64, error) {
	out := []protocol.Message{}
	var next uint64
	q.Limit = max(q.Limit, 1)
	text := strings.ToLower(q.Text)
	err := s.p.Store.Scan(ctx, []string{broker.MessagesAll}, q.After+1, func(seq uint64, data []byte) bool {
		m, ok := decode(seq, data)
		if !ok || !q.match(m, text) {
			return true
		}
		if len(out) == q.Limit {
			next = out[len(out)-1].Seq
			return false
		}
		out = append(out, m)
		return true
	})
	return out, next, err
}

func (q Query) match(m protocol.Message, text string) bool {
	switch {
	case q.From != "" && m.From != q.From, q.To != "" && m.To != q.To, q.Thread != "" && m.ThreadID != q.Thread,
		!q.Since.IsZero() && m.CreatedAt.Before(q.Since), !q.Until.IsZero() && m.CreatedAt.After(q.Until):
		return false
	}
	return text == "" || strings.Contains(strings.ToLower(m.Subject+" "+string(m.Body)), text)
}

// Thread is a thread's every kept message, in order (each names the one it
// answers in reply_to: the tree).
func (s *Service) Thread(ctx context.Context, id string) ([]protocol.Message, error) {
	thread := s.threadOf(id)
	if thread == "" {
		return nil, ErrNoThread
	}
	msgs, _, err := s.Search(ctx, Query{Thread: thread, Limit: 10_000})
	return msgs, err
}

// ErrNoThread means no kept message has that id.
var ErrNoThread = errors.New("no such message")
