package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// ErrNoChannel means a channel there is not; ErrChannelExists a create of
// one there is; ErrNotSubscribed an agent's use of one it has not joined.
var (
	ErrNoChannel      = errors.New("no such channel")
	ErrChannelExists  = errors.New("the channel exists")
	ErrNotSubscribed  = errors.New("the agent has not joined the channel")
	notChannelLetters = regexp.MustCompile(`[^a-z0-9_-]+`)
)

// Normalize is a channel's name as the original made it: without a
// leading '#', lower case, and nothing outside a-z, 0-9, '-' and '_'.
func Normalize(name string) string {
	return notChannelLetters.ReplaceAllString(strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "#")), "")
}

// checkChannel normalises a channel name, which must be left with 1 to 64 characters.
func checkChannel(v *domain.ValidationError, field, name string) string {
	n := Normalize(name)
	if n == "" || len(n) > 64 {
		v.Add(field, "invalid", "a channel name keeps 1 to 64 of a-z, 0-9, '-', '_' (a leading '#' and the case are dropped)")
	}
	return n
}

// Channel returns one channel.
func (s *Service) Channel(ctx context.Context, name string) (protocol.Channel, error) {
	c, _, err := s.readChannel(ctx, Normalize(name))
	return c, err
}

func (s *Service) readChannel(ctx context.Context, name string) (protocol.Channel, uint64, error) {
	b, rev, err := s.p.Store.Channel(ctx, name)
	if err != nil {
		return protocol.Channel{}, 0, err
	}
	if b == nil {
		return protocol.Channel{}, 0, fmt.Errorf("read channel %s: %w", name, ErrNoChannel)
	}
	var c protocol.Channel
	if err := json.Unmarshal(b, &c); err != nil {
		return c, 0, fmt.Errorf("decode channel %s: %w", name, err)
	}
	return c, rev, nil
}

// Channels lists every channel.
func (s *Service) Channels(ctx context.Context) ([]protocol.Channel, error) {
	names, err := s.p.Store.ChannelNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Channel, 0, len(names))
	for _, n := range names {
		c, err := s.Channel(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Create makes a channel (ErrChannelExists when there is one).
func (s *Service) Create(ctx context.Context, by, name, description string) (protocol.Channel, error) {
	v := &domain.ValidationError{}
	n := checkChannel(v, "name", name)
	if len(description) > 1024 {
		v.Add("description", "too_long", "at most 1024 bytes")
	}
	if err := v.Err(); err != nil {
		return protocol.Channel{}, err
	}
	c := protocol.Channel{Name: n, Description: description, CreatedAt: s.p.Now().UTC(), CreatedBy: by, Subscribers: []string{}}
	b, _ := json.Marshal(c)
	err := s.p.Store.PutChannel(ctx, n, b, 0)
	if errors.Is(err, broker.ErrConflict) {
		return c, fmt.Errorf("create channel %s: %w", n, ErrChannelExists)
	}
	return c, err
}

// Join subscribes agent to a channel, creating it if there is none.
func (s *Service) Join(ctx context.Context, agent, name string) (protocol.Channel, error) {
	return s.membership(ctx, agent, name, true)
}

// Leave unsubscribes agent from a channel.
func (s *Service) Leave(ctx context.Context, agent, name string) (protocol.Channel, error) {
	return s.membership(ctx, agent, name, false)
}

func (s *Service) membership(ctx context.Context, agent, name string, join bool) (protocol.Channel, error) {
	v := &domain.ValidationError{}
	n := checkChannel(v, "channel", name)
	if err := v.Err(); err != nil {
		return protocol.Channel{}, err
	}
	for range 20 {
		c, rev, err := s.readChannel(ctx, n)
		if errors.Is(err, ErrNoChannel) && join {
			if _, err = s.Create(ctx, agent, n, ""); err != nil && !errors.Is(err, ErrChannelExists) {
				return c, err
			}
			continue
		}
		if err != nil {
			return c, err
		}
		c.Subscribers = slices.DeleteFunc(c.Subscribers, func(id string) bool { return id == agent })
		if join {
			c.Subscribers = append(c.Subscribers, agent)
			slices.Sort(c.Subscribers)
		}
		b, _ := json.Marshal(c)
		if err := s.p.Store.PutChannel(ctx, n, b, rev); errors.Is(err, broker.ErrConflict) {
			continue
		} else if err != nil {
			return c, err
		}
		return c, nil
	}
	return protocol.Channel{}, fmt.Errorf("change channel %s: %w", n, broker.ErrConflict)
}

// Subscriptions are the channels agent has joined.
func (s *Service) Subscriptions(ctx context.Context, agent string) ([]string, error) {
	all, err := s.Channels(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, c := range all {
		if slices.Contains(c.Subscribers, agent) {
			out = append(out, c.Name)
		}
	}
	return out, nil
}

// History is a channel's last limit messages, oldest first; an agent
// ("" for an operator) reads only a channel it has joined.
func (s *Service) History(ctx context.Context, agent string, ref protocol.ChannelRef) ([]protocol.Message, error) {
	c, err := s.Channel(ctx, ref.Channel)
	if err != nil {
		return nil, err
	}
	if agent != "" && !slices.Contains(c.Subscribers, agent) {
		return nil, fmt.Errorf("history of %s: %w", c.Name, ErrNotSubscribed)
	}
	limit := min(max(ref.Limit, 0), 200)
	if limit == 0 {
		limit = 50
	}
	out := []protocol.Message{}
	err = s.p.Store.Scan(ctx, []string{broker.MessageChannel(c.Name)}, 1, func(seq uint64, data []byte) bool {
		if m, ok := decode(seq, data); ok {
			out = append(out, m)
		}
		return true
	})
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, err
}
