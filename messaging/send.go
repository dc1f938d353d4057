package messaging

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// Importances are the valid importance words, lowest first.
var Importances = []string{"low", "normal", "high", "urgent"}

// Send checks and stores a message from from (an agent, or an operator
// when agent is false), then pushes it to its connected recipients: its
// agent, a channel's subscribers (an agent sends only to a channel it
// joined), or every connected agent; never the sender.
func (s *Service) Send(ctx context.Context, from string, agent bool, req protocol.Send) (protocol.Message, error) {
	m, err := s.compose(from, req)
	if err != nil {
		return m, err
	}
	recipients, err := s.recipients(ctx, m, agent)
	if err != nil {
		return m, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m, fmt.Errorf("encode message: %w", err)
	}
	if m.Seq, err = s.p.Store.Publish(ctx, subjectOf(m), m.ID, b); err != nil {
		return m, err
	}
	s.noteThread(m)
	s.p.Telemetry.Emit("message.send", map[string]float64{"bytes": float64(len(m.Body)), "recipients": float64(len(recipients))},
		map[string]any{"message_id": m.ID, "from": m.From, "to": m.To, "thread_id": m.ThreadID})
	s.deliver(m, recipients, m.To == "" && m.Channel == "")
	return m, nil
}

// deliver pushes m to its connected recipients at once; the others find
// it in their mailbox when they are back (queued).
// A broadcast's recipients were read as the online agents.
func (s *Service) deliver(m protocol.Message, recipients []string, broadcast bool) {
	pushed, _ := json.Marshal(m) // with its sequence, for the ack
	var now, later []string
	for _, id := range recipients {
		if !broadcast && !s.p.IsOnline(id) {
			later = append(later, id)
			continue
		}
		now = append(now, id)
		s.push(id, pushed)
	}
	if len(now) > 0 {
		s.p.Telemetry.Emit("message.deliver", map[string]float64{"recipients": float64(len(now))},
			map[string]any{"message_id": m.ID})
	}
	if len(later) > 0 {
		s.p.Telemetry.Emit("message.queue", map[string]float64{"recipients": float64(len(later))},
			map[string]any{"message_id": m.ID, "to": m.To, "channel": m.Channel})
		s.log.Info().Str("message_id", m.ID).Strs("offline", later).Msg("message queued in the mailboxes of offline agents")
	}
}

// recipients are who gets a message pushed: its agent, a channel's
// subscribers, or every connected agent; never its sender.
func (s *Service) recipients(ctx context.Context, m protocol.Message, agent bool) ([]string, error) {
	var ids []string
	switch {
	case m.Channel != "":
		c, err := s.Channel(ctx, m.Channel)
		if err != nil {
			return nil, err
		}
		if agent && !slices.Contains(c.Subscribers, m.From) {
			return nil, fmt.Errorf("send to %s: %w", c.Name, ErrNotSubscribed)
		}
		ids = c.Subscribers
	case m.To == "":
		ids = s.p.Online()
	default:
		return []string{m.To}, nil
	}
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == m.From }), nil
}

// compose checks req and makes the message.
func (s *Service) compose(from string, req protocol.Send) (protocol.Message, error) {
	v := &domain.ValidationError{}
	if req.To != "" {
		if err := domain.CheckAgentID(req.To); err != nil {
			v.Add("to", "invalid", err.Error())
		}
	}
	if req.Channel != "" {
		if req.Channel = checkChannel(v, "channel", req.Channel); req.To != "" {
			v.Add("to", "conflict", "a message goes to an agent or a channel, not both")
		}
	}
	kind := cmp.Or(req.Type, "text")
	checkBody(v, kind, req.Body)
	importance := cmp.Or(req.Importance, "normal")
	if !slices.Contains(Importances, importance) {
		v.Add("importance", "invalid", "use one of "+strings.Join(Importances, ", "))
	}
	if len(req.Subject) > 256 || !utf8.ValidString(req.Subject) {
		v.Add("subject", "invalid", "at most 256 bytes of UTF-8")
	}
	m := protocol.Message{ID: "msg-" + broker.NewToken()[3:19], From: from, To: req.To, Channel: req.Channel, Type: kind, Subject: req.Subject,
		Body: req.Body, ReplyTo: req.ReplyTo, Importance: importance, AckRequired: req.AckRequired,
		CreatedAt: s.p.Now().UTC()}
	m.ThreadID = m.ID
	if req.ReplyTo != "" {
		if m.ThreadID = s.threadOf(req.ReplyTo); m.ThreadID == "" {
			v.Add("reply_to", "not_found", "no kept message "+req.ReplyTo)
		}
	}
	return m, v.Err()
}

// checkBody holds text to a JSON string and json to any JSON value.
func checkBody(v *domain.ValidationError, kind string, body json.RawMessage) {
	switch {
	case len(body) == 0:
		v.Add("body", "required", "a message needs a body")
	case len(body) > protocol.MaxMessageBody:
		v.Add("body", "too_long", fmt.Sprintf("%d bytes, at most %d", len(body), protocol.MaxMessageBody))
	case kind == "text":
		var text string
		if json.Unmarshal(body, &text) != nil {
			v.Add("body", "wrong_type", `a text message's body is a JSON string (type "json" for a value)`)
		}
	case kind != "json":
		v.Add("type", "invalid", `use text or json`)
	}
}
