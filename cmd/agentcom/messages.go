package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/sidecar"
)

// sidecarFlag is where a command finds the relay of the sidecar it speaks
// for: --sidecar, else the socket the sidecar gave the task's command.
func sidecarFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("sidecar", os.Getenv(sidecar.SocketVar),
		"the sidecar's relay socket; a task's command finds it in "+sidecar.SocketVar)
}

// errNoSidecar says why an agent's command cannot run here.
func errNoSidecar(what string) error {
	return fmt.Errorf("%s speaks for an agent through its sidecar: run it from a task's command, where %s is set, or pass --sidecar SOCKET",
		what, sidecar.SocketVar)
}

// relay asks the sidecar on socket for verb as its agent.
func relay(cmd *cobra.Command, socket, verb string, req, out any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), callTimeout)
	defer cancel()
	return sidecar.RelayCall(ctx, socket, verb, logsink.NewRequestID(), req, out)
}

// asAgentOr calls verb through the sidecar on socket when there is one,
// else the operator's op: the commands that both an agent and an operator
// run.
func asAgentOr(cmd *cobra.Command, socket, verb string, agentReq any, op ops.Op, opReq, out any) (json.RawMessage, error) {
	if socket != "" {
		return relay(cmd, socket, verb, agentReq, out)
	}
	return callInto(cmd, op, opReq, out)
}

// emitLine prints raw for --json, else one line.
func emitLine(cmd *cobra.Command, asJSON bool, raw json.RawMessage, format string, args ...any) error {
	return emit(cmd.OutOrStdout(), asJSON, raw, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, format+"\n", args...)
		return err
	})
}

func newSendCmd() *cobra.Command {
	var req protocol.Send
	var kind string
	cmd := &cobra.Command{Use: "send [BODY|-]", Args: cobra.MaximumNArgs(1),
		Short: "Send a message to an agent (--to), a channel (--channel) or every agent (neither)",
		Long: "Send a message. From a task's command it goes as the sidecar's agent (no token needed); elsewhere\n" +
			"as the operator whose token the client uses (admin). BODY is Markdown text, or with --type json a JSON\n" +
			"value; - or no BODY reads it from stdin."}
	config.ClientFlags(cmd.PersistentFlags())
	socket, asJSON := sidecarFlag(cmd), jsonFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "the agent to send to")
	f.StringVar(&req.Channel, "channel", "", "the channel to send to (an agent must have joined it)")
	f.StringVar(&req.Subject, "subject", "", "a subject line")
	f.StringVar(&req.ReplyTo, "reply-to", "", "the id of the message this answers (its thread is joined)")
	f.StringVar(&req.Importance, "importance", "", "low, normal (the default), high or urgent")
	f.BoolVar(&req.AckRequired, "ack-required", false, "ask the recipient to acknowledge it")
	f.StringVar(&kind, "type", "text", "text (Markdown) or json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		body, err := readBody(cmd.InOrStdin(), args, kind)
		if err != nil {
			return err
		}
		req.Body, req.Type = body, kind
		var m protocol.Message
		raw, err := asAgentOr(cmd, *socket, broker.VerbSend, req, ops.OpMessageSend, req, &m)
		if err != nil {
			return err
		}
		return emitLine(cmd, *asJSON, raw, "sent %s (seq %d, thread %s)", m.ID, m.Seq, m.ThreadID)
	}
	return cmd
}

// readBody is a message's body from args or stdin: text as a JSON
// string, json checked to be JSON.
func readBody(stdin io.Reader, args []string, kind string) (json.RawMessage, error) {
	var text string
	if len(args) == 1 && args[0] != "-" {
		text = args[0]
	} else {
		b, err := io.ReadAll(io.LimitReader(stdin, protocol.MaxMessageBody+1))
		if err != nil {
			return nil, fmt.Errorf("read body from stdin: %w", err)
		}
		text = string(b)
	}
	if kind == "json" {
		if !json.Valid([]byte(text)) {
			return nil, errors.New("body: not JSON (--type json sends a JSON value; leave it out for text)")
		}
		return json.RawMessage(strings.TrimSpace(text)), nil
	}
	b, err := json.Marshal(text)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	return b, nil
}

func newInboxCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "inbox", Args: cobra.NoArgs,
		Short: "List the agent's unacknowledged messages, as its sidecar holds them (from a task's command)"}
	socket, asJSON := sidecarFlag(cmd), jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *socket == "" {
			return errNoSidecar("agentcom inbox")
		}
		var in protocol.Inbox
		raw, err := relay(cmd, *socket, broker.VerbInbox, struct{}{}, &in)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printMessages(w, in.Messages) })
	}
	ack := &cobra.Command{Use: "ack SEQ", Args: cobra.ExactArgs(1),
		Short: "Acknowledge every message up to SEQ: they leave the inbox and the mailbox"}
	ackSocket, ackJSON := sidecarFlag(ack), jsonFlag(ack)
	ack.RunE = func(cmd *cobra.Command, args []string) error {
		if *ackSocket == "" {
			return errNoSidecar("agentcom inbox ack")
		}
		var a protocol.Ack
		if _, err := fmt.Sscan(args[0], &a.Seq); err != nil || a.Seq == 0 {
			return fmt.Errorf("SEQ: %q is not a message's sequence (a positive number, as inbox shows)", args[0])
		}
		raw, err := relay(cmd, *ackSocket, broker.VerbAck, a, &a)
		if err != nil {
			return err
		}
		return emitLine(cmd, *ackJSON, raw, "acknowledged up to seq %d", a.Seq)
	}
	cmd.AddCommand(ack)
	return cmd
}

func printMessages(w io.Writer, msgs []protocol.Message) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tID\tFROM\tTO\tSUBJECT\tBODY")
	for _, m := range msgs {
		to := recipientOf(m)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", m.Seq, m.ID, m.From, to, dash(short(m.Subject, 30)), short(bodyText(m), 60))
	}
	return tw.Flush()
}

// recipientOf names a message's recipient: #channel, an agent, or all.
func recipientOf(m protocol.Message) string {
	switch {
	case m.Channel != "":
		return "#" + m.Channel
	case m.To != "":
		return m.To
	}
	return "all"
}

// bodyText is a text body's text, or a JSON body as it is.
func bodyText(m protocol.Message) string {
	var s string
	if m.Type == "text" && json.Unmarshal(m.Body, &s) == nil {
		return s
	}
	return string(m.Body)
}

func newReserveCmd() *cobra.Command {
	var req protocol.Reserve
	var shared bool
	var ttl time.Duration
	var renew string
	cmd := &cobra.Command{Use: "reserve --project P PATH...",
		Short: "Reserve paths or globs of a project for the agent (from a task's command); --renew ID extends one",
		Args: func(_ *cobra.Command, args []string) error {
			if renew == "" && len(args) == 0 {
				return errors.New("name at least one PATH (a path or glob in the project), or --renew ID")
			}
			return nil
		}}
	socket, asJSON := sidecarFlag(cmd), jsonFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&req.Project, "project", "", "the project the paths belong to (required)")
	f.BoolVar(&shared, "shared", false, "a shared reservation: others may share it, no one may take it exclusively")
	f.DurationVar(&ttl, "ttl", 0, "how long it lasts (default the hub's, 1h)")
	f.StringVar(&req.Reason, "reason", "", "why, shown to whoever it stops")
	f.StringVar(&renew, "renew", "", "renew the reservation with this id for --ttl more")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *socket == "" {
			return errNoSidecar("agentcom reserve")
		}
		if req.Project == "" {
			return errors.New("--project: required")
		}
		var r protocol.Reservation
		var raw json.RawMessage
		var err error
		if renew != "" {
			ref := protocol.ReservationRef{Project: req.Project, ID: renew, TTLS: int(ttl / time.Second)}
			raw, err = relay(cmd, *socket, broker.VerbRenew, ref, &r)
		} else {
			req.Paths, req.Exclusive, req.TTLS = args, !shared, int(ttl/time.Second)
			raw, err = relay(cmd, *socket, broker.VerbReserve, req, &r)
		}
		if err != nil {
			printConflicts(cmd.ErrOrStderr(), raw)
			return err
		}
		return emitLine(cmd, *asJSON, raw, "reserved %s: %s until %s", r.ID, strings.Join(r.Paths, " "),
			r.ExpiresAt.Format(time.RFC3339))
	}
	return cmd
}

// printConflicts says who holds what when a reserve was refused for it.
func printConflicts(w io.Writer, raw json.RawMessage) {
	var c protocol.ReserveConflict
	if json.Unmarshal(raw, &c) != nil || c.Error != protocol.CodeReservationConflict {
		return
	}
	for _, r := range c.Conflicts {
		kind := "shared"
		if r.Exclusive {
			kind = "exclusive"
		}
		fmt.Fprintf(w, "held by %s: %s (%s, %s, until %s)\n", r.AgentID, strings.Join(r.Paths, " "), r.ID, kind,
			r.ExpiresAt.Format(time.RFC3339))
	}
}

func newReleaseCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{Use: "release --project P ID", Args: cobra.ExactArgs(1),
		Short: "Release a reservation: the agent's own from a task's command, any as an operator (admin)"}
	config.ClientFlags(cmd.PersistentFlags())
	socket, asJSON := sidecarFlag(cmd), jsonFlag(cmd)
	cmd.Flags().StringVar(&project, "project", "", "the reservation's project (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if project == "" {
			return errors.New("--project: required")
		}
		raw, err := asAgentOr(cmd, *socket, broker.VerbRelease, protocol.ReservationRef{Project: project, ID: args[0]},
			ops.OpReservationRelease, map[string]string{"project": project, "id": args[0]}, nil)
		if err != nil {
			return err
		}
		return emitLine(cmd, *asJSON, raw, "released %s", args[0])
	}
	return cmd
}

func newChannelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "channel", Short: "Channels: join and leave (an agent, from a task's command), history and list"}
	for _, verb := range []string{broker.VerbJoin, broker.VerbLeave} {
		c := &cobra.Command{Use: verb + " NAME", Args: cobra.ExactArgs(1),
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a channel as the sidecar's agent"}
		socket, asJSON := sidecarFlag(c), jsonFlag(c)
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if *socket == "" {
				return errNoSidecar("agentcom channel " + verb)
			}
			var ch protocol.Channel
			raw, err := relay(cmd, *socket, verb, protocol.ChannelRef{Channel: args[0]}, &ch)
			if err != nil {
				return err
			}
			return emitLine(cmd, *asJSON, raw, "%s: %s", ch.Name, strings.Join(ch.Subscribers, " "))
		}
		cmd.AddCommand(c)
	}
	cmd.AddCommand(newChannelHistoryCmd(), newChannelListCmd())
	return cmd
}

func newChannelHistoryCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{Use: "history NAME", Args: cobra.ExactArgs(1),
		Short: "A channel's last messages, oldest first (as the agent from a task's command, else as an operator)"}
	config.ClientFlags(cmd.PersistentFlags())
	socket, asJSON := sidecarFlag(cmd), jsonFlag(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "how many (1 to 200; default 50)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var h ops.ChannelHistory
		raw, err := asAgentOr(cmd, *socket, broker.VerbHistory, protocol.ChannelRef{Channel: args[0], Limit: limit},
			ops.OpChannelHistory, map[string]any{"channel": args[0], "limit": limit}, &h)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printMessages(w, h.Messages) })
	}
	return cmd
}

func newChannelListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Args: cobra.NoArgs, Short: "Every channel and its subscribers"}
	config.ClientFlags(cmd.PersistentFlags())
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out ops.Channels
		raw, err := callInto(cmd, ops.OpChannelList, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHANNEL\tSUBSCRIBERS")
			for _, c := range out.Channels {
				fmt.Fprintf(tw, "%s\t%s\n", c.Name, dash(strings.Join(c.Subscribers, " ")))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newMessagesCmd() *cobra.Command {
	var q ops.MessageQuery
	cmd := &cobra.Command{Use: "messages", Args: cobra.NoArgs,
		Short: "Search the kept messages by text (--q), sender, recipient and thread, oldest first"}
	config.ClientFlags(cmd.PersistentFlags())
	asJSON := jsonFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&q.Q, "q", "", "text in the subject or body (any case)")
	f.StringVar(&q.From, "from", "", "sender")
	f.StringVar(&q.To, "to", "", "recipient agent")
	f.StringVar(&q.Thread, "thread", "", "thread id")
	f.Uint64Var(&q.After, "after", 0, "start past this sequence (the previous page's next)")
	f.IntVar(&q.Limit, "limit", 0, "page size (default the hub's)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out ops.Messages
		raw, err := callInto(cmd, ops.OpMessageList, q, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printMessages(w, out.Messages) })
	}
	thread := &cobra.Command{Use: "thread ID", Args: cobra.ExactArgs(1),
		Short: "The whole thread of a message, in order: each line's REPLY_TO is its parent"}
	threadJSON := jsonFlag(thread)
	thread.RunE = func(cmd *cobra.Command, args []string) error {
		var out ops.Thread
		raw, err := callInto(cmd, ops.OpThreadGet, map[string]string{"id": args[0]}, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *threadJSON, raw, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tID\tREPLY_TO\tFROM\tBODY")
			for _, m := range out.Messages {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.Seq, m.ID, dash(m.ReplyTo), m.From, short(bodyText(m), 60))
			}
			return tw.Flush()
		})
	}
	cmd.AddCommand(thread)
	return cmd
}
