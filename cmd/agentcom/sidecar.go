package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/hub"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/sidecar"
)

func newSidecarCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Run an agent's sidecar: connect to the hub, take tasks, run them, report results",
		Long: "Run an agent's sidecar. In exec mode (--exec) it runs a shell command per task, with the task in\n" +
			"AGENTCOM_TASK_* variables and as JSON on stdin; stdout is the result. In wake mode (--wake,\n" +
			"--results-dir) it runs a wake command, then waits for <results-dir>/<task id>.json.\n" +
			"It logs to stdout (--log-format: auto, json, console) and runs until SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadSidecar(cmd.Flags())
			if err != nil {
				return err
			}
			return runSidecar(cmd.Context(), cfg)
		},
	}
	config.SidecarFlags(cmd.Flags())
	return cmd
}

// runSidecar runs until SIGINT or SIGTERM, or until the sidecar cannot
// work (its token refused), then stops it.
func runSidecar(ctx context.Context, cfg config.Sidecar) error {
	file := logsink.SinkConfig{Dir: cfg.StateDir, File: "sidecar.log",
		MaxSizeMB: cfg.Log.MaxSizeMB, MaxBackups: cfg.Log.MaxBackups}.Writer()
	defer file.Close()
	out := logsink.NewOutput(logsink.Stdout(cfg.Log.Format), file)
	defer out.Attach(nil)
	log := logsink.NewWithLevels(out, logsink.Hostname(), hub.LogLevels(cfg.Log))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sc := sidecar.New(sidecar.FromConfig(cfg), log)
	if err := sc.Start(ctx); err != nil {
		log.Module("main").Error().Err(err).Msg("sidecar failed to start")
		return err
	}
	// Its lines also go to the hub's log sink (while connected).
	out.Attach(logsink.NewPublisher(sc.Conn(), broker.LogAgent(cfg.AgentID)))
	select {
	case <-ctx.Done():
		log.Module("main").Info().Msg("shutting down")
	case <-sc.Done():
	}
	sc.Stop()
	return sc.Err()
}
