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

// runHub runs until SIGINT or SIGTERM, then shuts down in order.
func runHub(ctx context.Context, cfg config.Hub) error {
	out := logsink.NewOutput(os.Stdout)
	log := logsink.NewWithLevels(out, nodeName(), hub.LogLevels(cfg.Log))
	routeCrashes(filepath.Join(cfg.DataDir, "logs"), log.Module("main"))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := hub.New(cfg, log, out)
	if err := h.Start(ctx); err != nil {
		log.Module("main").Error().Err(err).Msg("hub failed to start")
		return err
	}
	<-ctx.Done()
	log.Module("main").Info().Msg("shutting down")
	h.Stop()
	return nil
}

func nodeName() string {
	name, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return name
}
