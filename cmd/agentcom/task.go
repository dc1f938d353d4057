package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/hub"
)

const callTimeout = 30 * time.Second

func newTaskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "task", Short: "Submit and inspect tasks on a running hub"}
	config.ClientFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSubmitCmd(), newListCmd(), newShowCmd(), newRetryCmd(), newCancelCmd())
	return cmd
}

// call dials the hub with the client config and runs one command.
func call(cmd *cobra.Command, command string, req, out any) error {
	cfg, err := config.LoadClient(cmd.Flags(), broker.AdminTokenFile)
	if err != nil {
		return err
	}
	c, err := hub.Dial(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), callTimeout)
	defer cancel()
	return c.Call(ctx, command, req, out)
}

func newSubmitCmd() *cobra.Command {
	var (
		priority, metadata string
		caps               []string
		maxRetries         int
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "submit DESCRIPTION",
		Short: "Submit a task and print its id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := map[string]any{"description": args[0], "priority": priority}
			if len(caps) > 0 {
				req["needed_capabilities"] = caps
			}
			if cmd.Flags().Changed("max-retries") {
				req["max_retries"] = maxRetries
			}
			if metadata != "" {
				if !json.Valid([]byte(metadata)) {
					return fmt.Errorf("--metadata: not valid JSON")
				}
				req["metadata"] = json.RawMessage(metadata)
			}
			var out map[string]any
			if err := call(cmd, broker.CmdTaskSubmit, req, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out["task_id"])
			return nil
		},
	}
	cmd.Flags().StringVar(&priority, "priority", "normal", "urgent, high, normal or low")
	cmd.Flags().StringArrayVar(&caps, "capability", nil, "a capability the agent needs (repeatable)")
	cmd.Flags().IntVar(&maxRetries, "max-retries", domain.DefaultMaxRetries, "failed attempts before dead letter")
	cmd.Flags().StringVar(&metadata, "metadata", "", "metadata as a JSON object")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reply as JSON")
	return cmd
}

type taskListReply struct {
	Tasks []domain.Task `json:"tasks"`
	Count int           `json:"count"`
}

func newListCmd() *cobra.Command {
	var q hub.ListQuery
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tasks in queue order (priority, then age)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out taskListReply
			if err := call(cmd, broker.CmdTaskList, q, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			printTasks(cmd.OutOrStdout(), out.Tasks)
			return nil
		},
	}
	cmd.Flags().StringVar(&q.Status, "status", "", "only tasks with this status")
	cmd.Flags().StringVar(&q.Priority, "priority", "", "only tasks with this priority")
	cmd.Flags().StringVar(&q.AssignedTo, "assigned-to", "", "only tasks assigned to this agent")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one task with its recent history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t domain.Task
			if err := call(cmd, broker.CmdTaskGet, map[string]string{"id": args[0]}, &t); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), t)
			}
			printTask(cmd.OutOrStdout(), &t)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newRetryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID",
		Short: "Bring a dead-lettered task back to the queue",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := call(cmd, broker.CmdTaskRetry, map[string]string{"id": args[0]}, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s requeued\n", args[0])
			return nil
		},
	}
}

func newCancelCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task that has not finished",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := map[string]string{"id": args[0], "reason": reason}
			if err := call(cmd, broker.CmdTaskCancel, req, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s cancelled\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the task's history")
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printTasks(w io.Writer, tasks []domain.Task) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRIORITY\tSTATUS\tASSIGNED\tCREATED\tDESCRIPTION")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Priority, t.Status, dash(t.AssignedTo),
			t.CreatedAt.Format(time.RFC3339), short(t.Description, 50))
	}
	tw.Flush()
}

func printTask(w io.Writer, t *domain.Task) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\nstatus\t%s\npriority\t%s\ndescription\t%s\n", t.ID, t.Status, t.Priority, t.Description)
	fmt.Fprintf(tw, "capabilities\t%s\ngeneration\t%d\nretries\t%d of %d\nassigned to\t%s\n",
		dash(strings.Join(t.NeededCapabilities, ", ")), t.Generation, t.RetryCount, t.MaxRetries, dash(t.AssignedTo))
	fmt.Fprintf(tw, "last error\t%s\ncreated\t%s\nupdated\t%s\n", dash(t.LastError),
		t.CreatedAt.Format(time.RFC3339Nano), t.UpdatedAt.Format(time.RFC3339Nano))
	tw.Flush()
	fmt.Fprintln(w, "history:")
	for _, h := range t.History {
		fmt.Fprintf(w, "  %s  %-20s %s %s\n", h.At.Format(time.RFC3339Nano), h.Event, h.AgentID, h.Detail)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
