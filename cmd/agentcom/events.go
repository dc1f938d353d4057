package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/telemetry"
)

func newEventsCmd() *cobra.Command {
	var filter string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Watch telemetry live, readably (like nats sub 'agent_com.>')",
		Long: "events prints every telemetry event the hub emits, one line each, until Ctrl-C.\n" +
			"--filter takes an event name pattern such as task.* or fsm.transition (NATS wildcards).\n" +
			"It connects with --token, AGENTCOM_TOKEN or the admin token file if there is one, else anonymously.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return watchEvents(cmd, filter, asJSON)
		},
	}
	config.ClientFlags(cmd.Flags())
	cmd.Flags().StringVar(&filter, "filter", ">", "event name pattern, such as task.* or agent.>")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as JSON")
	return cmd
}

func watchEvents(cmd *cobra.Command, filter string, asJSON bool) error {
	opts := []nats.Option{nats.Name("agentcom-events")}
	if cfg, err := config.LoadClient(cmd.Flags(), broker.AdminTokenFile); err == nil {
		opts = append(opts, nats.Token(cfg.Token))
	}
	url, _ := cmd.Flags().GetString("hub")
	if v := os.Getenv("AGENTCOM_HUB"); v != "" && !cmd.Flags().Changed("hub") {
		url = v
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to hub at %s: %w", url, err)
	}
	defer nc.Close()
	out := cmd.OutOrStdout()
	_, err = nc.Subscribe(telemetry.SubjectPrefix+filter, func(m *nats.Msg) { printEvent(out, m.Data, asJSON) })
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", telemetry.SubjectPrefix+filter, err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe to %s: %w", telemetry.SubjectPrefix+filter, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// printEvent writes one event: time, name, measurements, then metadata.
func printEvent(w io.Writer, data []byte, asJSON bool) {
	if asJSON {
		fmt.Fprintln(w, string(data))
		return
	}
	var ev telemetry.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return
	}
	parts := []string{ev.Time.Local().Format("15:04:05.000"), fmt.Sprintf("%-18s", ev.Event)}
	parts = append(parts, pairs(ev.Measurements)...)
	meta := map[string]any{}
	for k, v := range ev.Metadata {
		if v != "" && v != nil {
			meta[k] = v
		}
	}
	parts = append(parts, pairs(meta)...)
	fmt.Fprintln(w, strings.Join(parts, "  "))
}

func pairs[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return out
}
