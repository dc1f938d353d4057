package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/protocol/ops"
)

// workflowFlags are the submit flags that tie a task to other work.
type workflowFlags struct {
	dependsOn             []string
	onFailure, goal, idem string
}

func (f *workflowFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.dependsOn, "depends-on", nil, "a task that must complete first (repeatable)")
	cmd.Flags().StringVar(&f.onFailure, "on-dependency-failure", "", "cancel (default) or run, when a dependency fails")
	cmd.Flags().StringVar(&f.goal, "goal", "", "the goal the task belongs to (created on first use)")
	cmd.Flags().StringVar(&f.idem, "idempotency-key", "", "a repeat with this key answers the first task")
}

// fill adds the set flags to a submit body.
func (f *workflowFlags) fill(req map[string]any) {
	for field, v := range map[string]string{"on_dependency_failure": f.onFailure, "goal_id": f.goal, "idempotency_key": f.idem} {
		if v != "" {
			req[field] = v
		}
	}
	if len(f.dependsOn) > 0 {
		req["depends_on"] = f.dependsOn
	}
}

func newGoalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "goal", Short: "Goals: tasks grouped, with their counts and DAG"}
	config.ClientFlags(cmd.PersistentFlags())
	return group(cmd, newGoalCreateCmd(), newGoalListCmd(), newGoalShowCmd(), newGoalCancelCmd())
}

func newGoalCreateCmd() *cobra.Command {
	var id, description string
	cmd := &cobra.Command{Use: "create TITLE", Short: "Create a goal and print its id", Args: cobra.ExactArgs(1)}
	asJSON := jsonFlag(cmd)
	cmd.Flags().StringVar(&id, "id", "", "the goal's id (default: a new one)")
	cmd.Flags().StringVar(&description, "description", "", "what the goal is for")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var g ops.Goal
		raw, err := callInto(cmd, ops.OpGoalCreate, ops.GoalRequest{ID: id, Title: args[0], Description: description}, &g)
		if err != nil {
			return err
		}
		return emitLine(cmd, *asJSON, raw, "%s", g.ID)
	}
	return cmd
}

func newGoalListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "Every goal with its tasks counted", Args: cobra.NoArgs}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var list ops.Goals
		raw, err := callInto(cmd, ops.OpGoalList, struct{}{}, &list)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tTASKS\tTITLE")
			for _, g := range list.Goals {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.ID, g.Status, countsLine(g.Counts), g.Title)
			}
			return tw.Flush()
		})
	}
	return cmd
}

// countsLine is a goal's counts as "2 completed, 1 waiting".
func countsLine[K ~string](counts map[K]int) string {
	var parts []string
	for _, st := range []string{"waiting", "queued", "assigned", "working", "completed", "dead_letter", "cancelled"} {
		if n := counts[K(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func newGoalShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show ID", Short: "A goal: its status, counts and tasks with what each waits for",
		Args: cobra.ExactArgs(1)}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var g ops.Goal
		raw, err := callInto(cmd, ops.OpGoalGet, map[string]string{"id": args[0]}, &g)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printGoal(w, g) })
	}
	return cmd
}

func printGoal(w io.Writer, g ops.Goal) error {
	fmt.Fprintf(w, "%s  %s  (%s)\n", g.ID, g.Title, g.Status)
	fmt.Fprintf(w, "tasks: %s\n", countsLine(g.Counts))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range g.Tasks {
		after := ""
		if len(t.DependsOn) > 0 {
			after = "after " + strings.Join(t.DependsOn, ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.ID, t.Status, after, t.Description)
	}
	return tw.Flush()
}

func newGoalCancelCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{Use: "cancel ID", Short: "Cancel a goal and its open tasks", Args: cobra.ExactArgs(1)}
	asJSON := jsonFlag(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var g ops.Goal
		raw, err := callInto(cmd, ops.OpGoalCancel, map[string]string{"id": args[0], "reason": reason}, &g)
		if err != nil {
			return err
		}
		return emitLine(cmd, *asJSON, raw, "%s cancelled (%s)", g.ID, countsLine(g.Counts))
	}
	return cmd
}

func newScheduleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Periodic tasks: one task per cron or interval tick"}
	config.ClientFlags(cmd.PersistentFlags())
	return group(cmd, newScheduleAddCmd(), newScheduleListCmd(), newScheduleDeleteCmd())
}

func newScheduleAddCmd() *cobra.Command {
	var (
		spec, every, catchUp, priority, goal string
		caps                                 []string
	)
	cmd := &cobra.Command{Use: "add NAME DESCRIPTION", Short: "Add a schedule that submits DESCRIPTION at each tick",
		Args: cobra.ExactArgs(2)}
	asJSON := jsonFlag(cmd)
	cmd.Flags().StringVar(&spec, "cron", "", "a cron spec in UTC, such as '*/5 * * * *' or @hourly")
	cmd.Flags().StringVar(&every, "every", "", "an interval instead, such as 10m")
	cmd.Flags().StringVar(&catchUp, "catch-up", "once", "a tick missed while the hub was down: once or skip")
	cmd.Flags().StringVar(&priority, "priority", "normal", "the tasks' priority")
	cmd.Flags().StringArrayVar(&caps, "capability", nil, "a capability the tasks need (repeatable)")
	cmd.Flags().StringVar(&goal, "goal", "", "the goal the tasks belong to")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		task := map[string]any{"description": args[1], "priority": priority}
		if len(caps) > 0 {
			task["needed_capabilities"] = caps
		}
		if goal != "" {
			task["goal_id"] = goal
		}
		body, err := json.Marshal(task)
		if err != nil {
			return fmt.Errorf("encode task: %w", err)
		}
		var s ops.Schedule
		raw, err := callInto(cmd, ops.OpScheduleCreate,
			ops.ScheduleRequest{Name: args[0], Cron: spec, Every: every, CatchUp: catchUp, Task: body}, &s)
		if err != nil {
			return err
		}
		return emitLine(cmd, *asJSON, raw, "%s: next tick %s", s.Name, tickText(s.NextTick))
	}
	return cmd
}

// tickText is a tick as the lists show it ("never" for none).
func tickText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format("2006-01-02 15:04:05Z07:00")
}

func newScheduleListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "Every schedule with its next tick", Args: cobra.NoArgs}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var list ops.Schedules
		raw, err := callInto(cmd, ops.OpScheduleList, struct{}{}, &list)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tWHEN\tCATCH UP\tNEXT TICK")
			for _, s := range list.Schedules {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Cron+s.Every, s.CatchUp, tickText(s.NextTick))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newScheduleDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delete NAME", Short: "Delete a schedule (its tasks stay)", Args: cobra.ExactArgs(1)}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		raw, err := callInto(cmd, ops.OpScheduleDelete, map[string]string{"name": args[0]}, nil)
		if err != nil {
			return err
		}
		return emitLine(cmd, *asJSON, raw, "%s deleted", args[0])
	}
	return cmd
}
