package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
)

const callTimeout = 30 * time.Second

func newTaskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "task", Short: "Submit and inspect tasks on a running hub"}
	config.ClientFlags(cmd.PersistentFlags())
	return group(cmd, newSubmitCmd(), newListCmd(), newShowCmd(), newRetryCmd(), newCancelCmd(),
		newStatsCmd(), newDeadLetterCmd())
}

// dialClient dials the hub with the command's client config.
func dialClient(cmd *cobra.Command) (*client.Client, error) {
	cfg, err := config.LoadClient(cmd.Flags(), broker.AdminTokenFile)
	if err != nil {
		return nil, err
	}
	return client.Dial(cfg)
}

// call dials the hub with the client config and calls one operation.
func call(cmd *cobra.Command, op ops.Op, req, out any) error {
	c, err := dialClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), callTimeout)
	defer cancel()
	return c.Do(ctx, op, req, out)
}

// callInto calls one operation, decodes its reply into out (when not
// nil) and returns the reply as sent, for --json.
func callInto(cmd *cobra.Command, op ops.Op, req, out any) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := call(cmd, op, req, &raw); err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decode %s reply: %w", op.Name, err)
		}
	}
	return raw, nil
}

func newSubmitCmd() *cobra.Command {
	var (
		priority, metadata string
		caps               []string
		maxRetries         int
		when               schedule
		flow               workflowFlags
	)
	cmd := &cobra.Command{
		Use:   "submit DESCRIPTION",
		Short: "Submit a task and print its id",
		Args:  cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
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
		if err := when.fill(req, time.Now()); err != nil {
			return err
		}
		flow.fill(req)
		var out struct {
			TaskID string `json:"task_id"`
		}
		raw, err := callInto(cmd, ops.OpTaskSubmit, req, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, out.TaskID)
			return err
		})
	}
	cmd.Flags().StringVar(&priority, "priority", "normal", "urgent, high, normal or low")
	cmd.Flags().StringArrayVar(&caps, "capability", nil, "a capability the agent needs (repeatable)")
	cmd.Flags().IntVar(&maxRetries, "max-retries", domain.DefaultMaxRetries, "failed attempts before dead letter")
	cmd.Flags().StringVar(&metadata, "metadata", "", "metadata as a JSON object")
	when.flags(cmd)
	flow.register(cmd)
	return cmd
}

// schedule is when a submitted task may run and how its retries wait.
type schedule struct {
	runAt, retryBase, retryMax string
	in                         time.Duration
}

func (s *schedule) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.runAt, "run-at", "", "do not run before this RFC 3339 time")
	cmd.Flags().DurationVar(&s.in, "in", 0, "do not run before this long from now, such as 10m")
	cmd.Flags().StringVar(&s.retryBase, "retry-base", "", "wait after the first failure, such as 5s (default tasks.retry_base)")
	cmd.Flags().StringVar(&s.retryMax, "retry-max", "", "longest wait between attempts, such as 1h (default tasks.retry_max)")
}

// fill adds the schedule's fields to a submit body; the hub checks them.
func (s *schedule) fill(req map[string]any, now time.Time) error {
	switch {
	case s.runAt != "" && s.in != 0:
		return errors.New("--run-at and --in: give one, not both")
	case s.in < 0:
		return fmt.Errorf("--in: %s is negative; give a wait such as 10m", s.in)
	case s.in > 0:
		req["run_at"] = now.Add(s.in).UTC().Format(time.RFC3339Nano)
	case s.runAt != "":
		req["run_at"] = s.runAt
	}
	for field, v := range map[string]string{"retry_base": s.retryBase, "retry_max": s.retryMax} {
		if v != "" {
			req[field] = v
		}
	}
	return nil
}

type taskListReply struct {
	Tasks []domain.Task `json:"tasks"`
	Count int           `json:"count"`
}

func newListCmd() *cobra.Command {
	var q ops.ListQuery
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tasks in queue order (priority, then age)",
		Args:  cobra.NoArgs,
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out taskListReply
		raw, err := callInto(cmd, ops.OpTaskList, q, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printTasks(w, out.Tasks) })
	}
	cmd.Flags().StringVar(&q.Status, "status", "", "only tasks with this status")
	cmd.Flags().StringVar(&q.Priority, "priority", "", "only tasks with this priority")
	cmd.Flags().StringVar(&q.AssignedTo, "assigned-to", "", "only tasks assigned to this agent")
	return cmd
}

func newShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one task: its state, result, last error and recent history",
		Args:  cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var t domain.Task
		raw, err := callInto(cmd, ops.OpTaskGet, map[string]string{"id": args[0]}, &t)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printTask(w, &t) })
	}
	return cmd
}

// newTaskActionCmd is a command that changes one task (retry, cancel)
// and prints "<id> <done>", or the hub's reply with --json.
func newTaskActionCmd(use, short string, op ops.Op, done string, body func(id string) any) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1)}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		raw, err := callInto(cmd, op, body(args[0]), nil)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "%s %s\n", args[0], done)
			return err
		})
	}
	return cmd
}

func newRetryCmd() *cobra.Command {
	return newTaskActionCmd("retry ID", "Bring a dead-lettered task back to the queue", ops.OpTaskRetry,
		"requeued", func(id string) any { return map[string]string{"id": id} })
}

func newCancelCmd() *cobra.Command {
	var reason string
	cmd := newTaskActionCmd("cancel ID", "Cancel a task that has not finished", ops.OpTaskCancel,
		"cancelled", func(id string) any { return map[string]string{"id": id, "reason": reason} })
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the task's history")
	return cmd
}

func newStatsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count tasks by status and the queue by priority (as GET /api/tasks/stats)",
		Args:  cobra.NoArgs,
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var s projections.Stats
		raw, err := callInto(cmd, ops.OpTaskStats, nil, &s)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printStats(w, s) })
	}
	return cmd
}

func newDeadLetterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dead-letter",
		Aliases: []string{"dlq"},
		Short:   "List the dead letter: tasks that failed every retry (agentcom task retry ID requeues one)",
		Args:    cobra.NoArgs,
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out taskListReply
		raw, err := callInto(cmd, ops.OpTaskDeadLetter, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printDeadLetter(w, out.Tasks) })
	}
	return cmd
}

func printStats(w io.Writer, s projections.Stats) error {
	fmt.Fprintf(w, "tasks %d (at event %d)\n", s.Total, s.LastSeq)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCOUNT")
	for _, st := range domain.Statuses {
		fmt.Fprintf(tw, "%s\t%d\n", st, s.ByStatus[string(st)])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lanes := make([]string, 0, domain.PriorityCount)
	for _, p := range domain.Priorities {
		lanes = append(lanes, fmt.Sprintf("%s %d", p, s.QueuedByPriority[p.String()]))
	}
	_, err := fmt.Fprintf(w, "queued by priority: %s\n", strings.Join(lanes, ", "))
	return err
}

func printDeadLetter(w io.Writer, tasks []domain.Task) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRIORITY\tRETRIES\tUPDATED\tLAST ERROR")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%s\t%s\n", t.ID, t.Priority, t.RetryCount, t.MaxRetries,
			t.UpdatedAt.Format(time.RFC3339), dash(short(t.LastError, 60)))
	}
	return tw.Flush()
}

func printTasks(w io.Writer, tasks []domain.Task) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRIORITY\tSTATUS\tASSIGNED\tCREATED\tDESCRIPTION")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Priority, statusText(&t), dash(t.AssignedTo),
			t.CreatedAt.Format(time.RFC3339), short(t.Description, 50))
	}
	return tw.Flush()
}

// statusText is a task's status as the list shows it: a queued task that
// waits (a backoff, or its run_at) says until when.
func statusText(t *domain.Task) string {
	if t.Status == domain.StatusQueued && t.RunAfter != nil {
		return "queued until " + t.RunAfter.Format(time.RFC3339)
	}
	return string(t.Status)
}

func printTask(w io.Writer, t *domain.Task) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\nstatus\t%s\npriority\t%s\ndescription\t%s\n", t.ID, t.Status, t.Priority, t.Description)
	fmt.Fprintf(tw, "capabilities\t%s\ngeneration\t%d\nretries\t%d of %d\nassigned to\t%s\n",
		dash(strings.Join(t.NeededCapabilities, ", ")), t.Generation, t.RetryCount, t.MaxRetries, dash(t.AssignedTo))
	timeRow(tw, "assigned at", t.AssignedAt)
	timeRow(tw, "complete by", t.CompleteBy)
	timeRow(tw, "run after", t.RunAfter)
	fmt.Fprintf(tw, "last error\t%s\ncreated\t%s\nupdated\t%s\n", dash(oneLine(t.LastError)),
		t.CreatedAt.Format(time.RFC3339Nano), t.UpdatedAt.Format(time.RFC3339Nano))
	if err := tw.Flush(); err != nil {
		return err
	}
	printResult(w, t.Result)
	fmt.Fprintln(w, "history:")
	for _, h := range t.History {
		fmt.Fprintf(w, "  %s  %-20s %s %s\n", h.At.Format(time.RFC3339Nano), h.Event, h.AgentID, h.Detail)
	}
	return nil
}

// timeRow prints a row for a time the task may have.
func timeRow(w io.Writer, name string, at *time.Time) {
	if at != nil {
		fmt.Fprintf(w, "%s\t%s\n", name, at.Format(time.RFC3339Nano))
	}
}

// printResult prints a task's result under "result:", indented: a JSON
// string as its text (a command's stdout), other JSON indented.
func printResult(w io.Writer, result json.RawMessage) {
	fmt.Fprintln(w, "result:")
	for _, line := range strings.Split(resultText(result), "\n") {
		fmt.Fprintln(w, "  "+line)
	}
}

func resultText(result json.RawMessage) string {
	var s string
	var b bytes.Buffer
	switch {
	case len(result) == 0:
		return "-"
	case json.Unmarshal(result, &s) == nil:
		return s
	case json.Indent(&b, result, "", "  ") == nil:
		return b.String()
	}
	return string(result)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func short(s string, n int) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
