package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/storeops"
)

// newStoreCmds are the store operations: backup, restore, compact and
// store-health.
func newStoreCmds() []*cobra.Command {
	backup := storeCmd("backup", "Back up the running hub's events and tokens to <data-dir>/backups",
		ops.OpStoreBackup, func(w io.Writer, r struct{ Path string }) error {
			_, err := fmt.Fprintln(w, r.Path)
			return err
		})
	compact := storeCmd("compact", "Summarise finished tasks older than store.retention now",
		ops.OpStoreCompact, printCompact)
	health := storeCmd("store-health", "Show the store: streams, events, last backup, snapshot and compaction, and its health",
		ops.OpStoreHealth, printStoreHealth)
	return []*cobra.Command{backup, newRestoreCmd(), compact, health}
}

// storeCmd is a client command that calls op and prints its reply
// with human, or as JSON with --json.
func storeCmd[T any](use, short string, op ops.Op, human func(io.Writer, T) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	config.ClientFlags(cmd.Flags())
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out T
		raw, err := callInto(cmd, op, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return human(w, out) })
	}
	return cmd
}

// compactReply is the store.compact reply.
type compactReply struct {
	Result storeops.CompactResult `json:"result"`
}

func printCompact(w io.Writer, c compactReply) error {
	r := c.Result
	_, err := fmt.Fprintf(w, "compacted %d tasks finished before %s (%d failed); events %d -> %d\n",
		r.Compacted, r.Before.Format(time.RFC3339), r.Failed, r.EventsBefore, r.EventsAfter)
	return err
}

func printStoreHealth(w io.Writer, h storeops.StoreHealth) error {
	fmt.Fprintf(w, "status: %s\n", h.Status)
	for _, r := range h.Reasons {
		fmt.Fprintf(w, "  %s\n", r)
	}
	if h.LossAtStart != "" {
		fmt.Fprintf(w, "loss at start: %s\n", h.LossAtStart)
	}
	fmt.Fprintf(w, "tasks: %d\n", h.Tasks)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST SEQ\tLAST SEQ\tLOST")
	for _, s := range h.Streams {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", s.Name, s.Messages, s.Bytes, s.FirstSeq, s.LastSeq, len(s.LostMsgs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	opRow(w, "last backup", h.LastBackup)
	opRow(w, "last compaction", h.LastCompact)
	opRow(w, "last snapshot", h.Snapshot)
	return nil
}

// opRow prints when a store operation last ran and whether it worked.
func opRow(w io.Writer, name string, op *storeops.OpRecord) {
	if op == nil {
		fmt.Fprintf(w, "%s: never\n", name)
		return
	}
	result := "ok"
	if !op.OK {
		result = "failed"
	}
	fmt.Fprintf(w, "%s: %s, %s ago, %s\n", name, op.At.Format(time.RFC3339), time.Since(op.At).Round(time.Second), result)
}

func newRestoreCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into a stopped hub's data directory",
		Long: "restore replaces the event stream and the token bucket in --data-dir with those of FILE (a\n" +
			"backup written by agentcom backup). The hub must be stopped; its next start rebuilds the queue\n" +
			"from the restored events. To restore a running hub, use POST /api/admin/restore.",
		Args: cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		streams, err := storeops.Restore(cmd.Context(), dataDir, args[0], offlineLog())
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"status": "restored", "file": args[0], "streams": streams})
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "restored %s from %s\n", strings.Join(streams, ", "), args[0])
		return err
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", config.DefaultDataDir(), "the stopped hub's data directory")
	return cmd
}

// newStoreGroupCmd is `agentcom store`: operations on a stopped hub's
// event store.
func newStoreGroupCmd() *cobra.Command {
	group := &cobra.Command{Use: "store", Short: "Operate on a stopped hub's event store (accept-loss, quarantine)"}
	group.AddCommand(newAcceptLossCmd(), newQuarantineCmd())
	return group
}

func newQuarantineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine SEQ",
		Short: "Skip the event at SEQ, which this build cannot read, so that the hub serves again",
		Long: "quarantine is for a hub that stops at an event it cannot read (an unknown type, a newer schema\n" +
			"version after a downgrade, not JSON): its error names the sequence. It records the decision as a\n" +
			"store.event_quarantined event; every reader then skips that one event and keeps the task's others.\n" +
			"A readable event is refused: skipping it would change the state. The hub must be stopped.",
		Args: cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	dataDir, by := decisionFlags(cmd, "who decides (recorded in the event)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		seq, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil || seq == 0 {
			return fmt.Errorf("quarantine: SEQ must be an event's stream sequence (a positive integer), not %q", args[0])
		}
		reason, err := storeops.Quarantine(cmd.Context(), *dataDir, seq, *by, offlineLog())
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"status": "quarantined", "seq": seq, "reason": reason})
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "event %d quarantined: %s\n", seq, reason)
		return err
	}
	return cmd
}

func newAcceptLossCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accept-loss",
		Short: "Accept the events a stopped hub's store lost, so that the hub takes commands again",
		Long: "accept-loss is for a hub that found events missing from its store (it reports unhealthy and\n" +
			"refuses commands with store_loss) when no backup can be restored. It records the decision as a\n" +
			"store.loss_accepted event naming what is missing, and resets the hub's mark of what it had\n" +
			"applied. The lost events are gone for good. The hub must be stopped.",
		Args: cobra.NoArgs,
	}
	asJSON := jsonFlag(cmd)
	dataDir, by := decisionFlags(cmd, "who accepts the loss (recorded in the event)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		missing, err := storeops.AcceptLoss(cmd.Context(), *dataDir, *by, offlineLog())
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"status": "accepted", "missing": missing})
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "loss accepted: %s\n", missing)
		return err
	}
	return cmd
}

// decisionFlags are the flags of a decision recorded in a stopped hub's
// store: its data directory, and who decides.
func decisionFlags(cmd *cobra.Command, byUsage string) (dataDir, by *string) {
	dataDir = cmd.Flags().String("data-dir", config.DefaultDataDir(), "the stopped hub's data directory")
	by = cmd.Flags().String("by", os.Getenv("USER"), byUsage)
	return dataDir, by
}

// offlineLog is the log of a command on a stopped hub's store: warnings
// and worse, on stderr.
func offlineLog() logsink.Logger {
	return logsink.New(os.Stderr, logsink.Hostname(), logsink.LevelWarning)
}
