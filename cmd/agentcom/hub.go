package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/hub"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/storeops"
)

func newHubCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the hub: embedded NATS JetStream, task queue, HTTP and NATS APIs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadHub(cmd.Flags())
			if err != nil {
				return err
			}
			return runHub(cmd.Context(), cfg)
		},
	}
	config.HubFlags(cmd.Flags())
	return cmd
}

// runHub runs until SIGINT or SIGTERM, then shuts down in order. A
// restore asked for over the API stops the hub, restores, and starts it
// again.
func runHub(ctx context.Context, cfg config.Hub) error {
	out := logsink.NewOutput(logsink.Stdout(cfg.Log.Format))
	log := logsink.NewWithLevels(out, logsink.Hostname(), hub.LogLevels(cfg.Log))
	mlog := log.Module("main")
	routeCrashes(filepath.Join(cfg.DataDir, "logs"), mlog)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		h := hub.New(hub.Params{Config: cfg, Log: log, Out: out})
		if err := h.Start(ctx); err != nil {
			mlog.Error().Err(err).Msg("hub failed to start")
			return err
		}
		select {
		case <-ctx.Done():
			mlog.Info().Msg("shutting down")
			h.Stop()
			return nil
		case file := <-h.Restarts():
			mlog.Notice().Str("file", file).Msg("stopping the hub to restore a backup")
			h.Stop()
			streams, err := storeops.Restore(ctx, cfg.DataDir, file, log)
			if err != nil {
				mlog.Error().Err(err).Str("file", file).Msg("restore failed; starting on the store as it is")
				continue
			}
			mlog.Notice().Str("file", file).Strs("streams", streams).Msg("backup restored")
		}
	}
}
