package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/hub"
	"github.com/agentcom/agentcom/logsink"
)

// newStoreCmds are the store operations: backup, restore, compact and
// store-health.
func newStoreCmds() []*cobra.Command {
	backup := &cobra.Command{
		Use:   "backup",
		Short: "Back up the running hub's events and tokens to <data-dir>/backups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := call(cmd, broker.CmdStoreBackup, nil, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out["path"])
			return nil
		},
	}
	config.ClientFlags(backup.Flags())
	compact := &cobra.Command{
		Use:   "compact",
		Short: "Summarise finished tasks older than store.retention now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := call(cmd, broker.CmdStoreCompact, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	config.ClientFlags(compact.Flags())
	health := &cobra.Command{
		Use:   "store-health",
		Short: "Show the store: streams, events, last backup, snapshot and compaction, and its health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := call(cmd, broker.CmdStoreHealth, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	config.ClientFlags(health.Flags())
	return []*cobra.Command{backup, newRestoreCmd(), compact, health}
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
		RunE: func(cmd *cobra.Command, args []string) error {
			log := logsink.New(os.Stderr, logsink.Hostname(), logsink.LevelWarning)
			streams, err := hub.Restore(cmd.Context(), dataDir, args[0], log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %v from %s\n", streams, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", config.DefaultDataDir(), "the stopped hub's data directory")
	return cmd
}
