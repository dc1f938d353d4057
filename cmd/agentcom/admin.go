package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/limits"
	"github.com/agentcom/agentcom/protocol/ops"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Operate the hub while it runs: rate limits, agent reset, push-task, log levels, any operation (admin)"}
	config.ClientFlags(cmd.PersistentFlags())
	return group(cmd, newRateLimitsCmd(), newResetCmd(), newPushTaskCmd(), newLogLevelCmd(), newCallCmd())
}

// newCallCmd calls any operation of the table by its NATS command name:
// the CLI's way to every operation, such as nats req is NATS's.
func newCallCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "call COMMAND [BODY]", Args: cobra.RangeArgs(1, 2),
		Short:   "Call any hub operation by its command name with a JSON body, and print the reply (JSON)",
		Example: "  agentcom admin call task.get '{\"id\":\"task-1\"}'\n  agentcom admin call api.schemas",
		Long: "call sends one operation of docs/protocol.md (its NATS command name, such as task.stats) with\n" +
			"BODY, a JSON object whose fields are the operation's body and path parameters, and prints the\n" +
			"hub's reply as JSON. The commands: " + strings.Join(opNames(), ", ") + "."}
	jsonFlag(cmd) // the reply is JSON either way
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		i := slices.IndexFunc(ops.All, func(o ops.Op) bool { return o.Name == args[0] })
		if i < 0 {
			return fmt.Errorf("unknown command %q: use one of %s", args[0], strings.Join(opNames(), ", "))
		}
		var body json.RawMessage
		if len(args) == 2 {
			if !json.Valid([]byte(args[1])) {
				return fmt.Errorf("BODY %q is not JSON: give an object such as '{\"id\":\"task-1\"}'", args[1])
			}
			body = json.RawMessage(args[1])
		}
		raw, err := callInto(cmd, ops.All[i], body, nil)
		if err != nil {
			return err
		}
		return printRawJSON(cmd.OutOrStdout(), raw)
	}
	return cmd
}

func opNames() []string {
	names := make([]string, len(ops.All))
	for i, o := range ops.All {
		names[i] = o.Name
	}
	return names
}

// newLogLevelCmd shows the log levels, or changes one until a restart.
func newLogLevelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "log-level [LEVEL]", Args: cobra.MaximumNArgs(1),
		Short: "Show the log levels in force, or set one (every module's, or --module's) until a restart"}
	asJSON := jsonFlag(cmd)
	module := cmd.Flags().String("module", "", "the module to set (default: every module)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			var out ops.LevelSet
			raw, err := callInto(cmd, ops.OpLogLevelSet, ops.LevelRequest{Level: args[0], Module: *module}, &out)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "log level of %s: %s\n", out.Module, out.Level)
				return err
			})
		}
		var out ops.LogLevels
		raw, err := callInto(cmd, ops.OpLogLevelGet, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printLevels(w, out) })
	}
	return cmd
}

func printLevels(w io.Writer, l ops.LogLevels) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tLEVEL")
	fmt.Fprintf(tw, "*\t%s\n", l.Level)
	for _, m := range slices.Sorted(maps.Keys(l.Modules)) {
		fmt.Fprintf(tw, "%s\t%s\n", m, l.Modules[m])
	}
	return tw.Flush()
}

func newPushTaskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "push-task AGENT_ID DESCRIPTION", Args: cobra.ExactArgs(2),
		Short: "Submit a task that only AGENT_ID may run"}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var out ops.PushedTask
		raw, err := callInto(cmd, ops.OpPushTask, map[string]string{"agent_id": args[0], "description": args[1]}, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, out.TaskID)
			return err
		})
	}
	return cmd
}

func newResetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "reset AGENT_ID", Args: cobra.ExactArgs(1),
		Short: "Take back every task an agent holds and clear its unresponsive flag"}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var out ops.AgentReset
		raw, err := callInto(cmd, ops.OpAgentReset, map[string]string{"agent_id": args[0]}, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "%s reset: %d tasks taken back %v, flag cleared: %t\n", out.AgentID,
				len(out.Reclaimed), out.Reclaimed, out.Unflagged)
			return err
		})
	}
	return cmd
}

func newRateLimitsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rate-limits", Short: "Show and change each token's rate limits (docs/protocol.md, rate limits)"}
	list := rateLimitCmd("list", "The limits in force: defaults, overrides and exempt names", ops.OpRateLimitList, 0)
	set := rateLimitCmd("set NAME", "Set a token name's limits a minute (a tier left out keeps the default)",
		ops.OpRateLimitSet, 1)
	for _, tier := range []string{"light", "normal", "heavy"} {
		set.Flags().Int(tier, 0, "requests a minute in the "+tier+" tier (at least 1)")
	}
	return group(cmd, list, set,
		rateLimitCmd("clear NAME", "Remove a token name's override: the defaults apply again", ops.OpRateLimitClear, 1),
		rateLimitCmd("exempt NAME", "Lift every rate limit of a token name", ops.OpRateLimitExempt, 1),
		rateLimitCmd("unexempt NAME", "Take a token name off the exempt list", ops.OpRateLimitUnexempt, 1))
}

// rateLimitCmd calls op with the NAME argument (if any) and the tier
// flags that were set, and prints the limits in force.
func rateLimitCmd(use, short string, op ops.Op, args int) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(args)}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		req := map[string]any{}
		if args > 0 {
			req["name"] = argv[0]
		}
		for _, tier := range []string{"light", "normal", "heavy"} {
			if f := cmd.Flags().Lookup(tier); f != nil && f.Changed {
				req[tier], _ = cmd.Flags().GetInt(tier)
			}
		}
		var st limits.State
		raw, err := callInto(cmd, op, req, &st)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printLimits(w, st) })
	}
	return cmd
}

func printLimits(w io.Writer, st limits.State) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLIGHT\tNORMAL\tHEAVY")
	row := func(name string, l limits.Limits) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", name, l.Light, l.Normal, l.Heavy)
	}
	row("(default)", st.Defaults)
	for _, name := range slices.Sorted(maps.Keys(st.Overrides)) {
		row(name, st.Overrides[name])
	}
	for _, name := range st.Exempt {
		fmt.Fprintf(tw, "%s\texempt\texempt\texempt\n", name)
	}
	return tw.Flush()
}

func newUsageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "usage", Short: "What completions cost, by day and agent, as their agents reported",
		Args: cobra.NoArgs}
	config.ClientFlags(cmd.Flags())
	asJSON := jsonFlag(cmd)
	agent := cmd.Flags().String("agent", "", "one agent's rows")
	since := cmd.Flags().String("since", "", "from this UTC day (2026-12-03)")
	until := cmd.Flags().String("until", "", "to this UTC day, inclusive")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var u ops.Usage
		raw, err := callInto(cmd, ops.OpUsage, ops.UsageQuery{AgentID: *agent, Since: *since, Until: *until}, &u)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DAY\tAGENT\tTASKS\tINPUT\tOUTPUT\tCOST_USD")
			for _, r := range u.Days {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.4f\n", r.Day, r.AgentID, r.Tasks, r.InputTokens, r.OutputTokens, r.CostUSD)
			}
			fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%.4f\n", u.Total.Tasks, u.Total.InputTokens, u.Total.OutputTokens, u.Total.CostUSD)
			if len(u.OverBudget) > 0 {
				fmt.Fprintf(tw, "over today's budget of %.2f USD: %v\n", u.DailyBudgetUSD, u.OverBudget)
			}
			return tw.Flush()
		})
	}
	return cmd
}
