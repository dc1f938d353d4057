package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/storeops"
)

func newReplayCmd() *cobra.Command {
	var (
		opts   storeops.ReplayOpts
		until  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild the queue offline from stored events, up to a sequence or time",
		Long: "replay reads the event store in --data-dir (the hub must be stopped, or give a copy of its\n" +
			"data directory), rebuilds the projections up to --until-seq or --until, and prints the queue,\n" +
			"or with --task one task's full timeline with sequence numbers, times and request ids.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if until != "" {
				t, err := time.Parse(time.RFC3339, until)
				if err != nil {
					return fmt.Errorf("--until: %q is not an RFC 3339 time such as 2026-11-26T10:00:00Z", until)
				}
				opts.Until = t
			}
			res, err := storeops.Replay(cmd.Context(), opts, offlineLog())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			printReplay(cmd.OutOrStdout(), res, opts)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", config.DefaultDataDir(), "hub data directory (or a copy)")
	cmd.Flags().Uint64Var(&opts.UntilSeq, "until-seq", 0, "stop after this stream sequence")
	cmd.Flags().StringVar(&until, "until", "", "stop at this time (RFC 3339)")
	cmd.Flags().StringVar(&opts.TaskID, "task", "", "print this task's timeline")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printReplay(w io.Writer, res *storeops.ReplayResult, opts storeops.ReplayOpts) {
	fmt.Fprintf(w, "replayed to seq %d of %d\n", res.State.LastSeq, res.StreamLastSeq)
	if opts.TaskID != "" {
		fmt.Fprintf(w, "timeline of %s:\n", opts.TaskID)
		for _, e := range res.Timeline {
			fmt.Fprintf(w, "  %6d  %s  %-20s %-22s %s\n", e.Seq, e.Time.Format(time.RFC3339Nano), e.Type, dash(e.RequestID), e.Data)
		}
		fmt.Fprintln(w, "state:")
		printTask(w, res.Task)
		return
	}
	s := res.Stats
	fmt.Fprintf(w, "tasks %d: waiting %d, queued %d, assigned %d, working %d, completed %d, dead letter %d, cancelled %d\n",
		s.Total, s.ByStatus["waiting"], s.ByStatus["queued"], s.ByStatus["assigned"], s.ByStatus["working"], s.ByStatus["completed"],
		s.ByStatus["dead_letter"], s.ByStatus["cancelled"])
	if len(res.Settings) > 0 {
		fmt.Fprintln(w, "run-time settings in force:")
		for _, k := range slices.Sorted(maps.Keys(res.Settings)) {
			fmt.Fprintf(w, "  %s = %s\n", k, res.Settings[k])
		}
	}
	fmt.Fprintln(w, "tasks (queue order):")
	printTaskValues(w, res)
}

func printTaskValues(w io.Writer, res *storeops.ReplayResult) {
	tasks := make([]domain.Task, 0, len(res.State.Tasks))
	for _, t := range res.State.Tasks {
		tasks = append(tasks, *t)
	}
	printTasks(w, tasks)
}
