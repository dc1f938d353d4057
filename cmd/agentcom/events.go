package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/telemetry"
)

func newEventsCmd() *cobra.Command {
	var filter string
	var asJSON bool
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Watch telemetry live, readably (like nats sub 'agent_com.>'), or read it back",
		Long: "events prints every telemetry event the hub emits, one line each, until Ctrl-C.\n" +
			"--filter takes an event name pattern such as task.* or fsm.transition (NATS wildcards).\n" +
			"--since 10m prints the events the TELEMETRY stream kept from the last 10 minutes, then exits;\n" +
			"reading the stream needs the admin token.\n" +
			"It connects with --token, AGENTCOM_TOKEN or the admin token file if there is one, else anonymously.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runEvents(cmd, filter, since, asJSON) },
	}
	config.ClientFlags(cmd.Flags())
	cmd.Flags().StringVar(&filter, "filter", ">", "event name pattern, such as task.* or agent.>")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as JSON")
	cmd.Flags().DurationVar(&since, "since", 0, "print the kept events of this last while (such as 30m), then exit")
	return cmd
}

func runEvents(cmd *cobra.Command, filter string, since time.Duration, asJSON bool) error {
	if err := checkFilter(filter); err != nil {
		return err
	}
	if since < 0 {
		return fmt.Errorf("invalid --since %s: want how far back to read, such as 30m", since)
	}
	nc, url, withToken, err := connectEvents(cmd)
	if err != nil {
		return err
	}
	defer nc.Close()
	if since <= 0 {
		return watchEvents(cmd, nc, filter, asJSON)
	}
	if !withToken {
		return fmt.Errorf("--since reads the TELEMETRY stream, which needs the admin token " +
			"(--token, AGENTCOM_TOKEN, or --data-dir with its admin.token file)")
	}
	err = client.On(nc, url).TelemetryHistory(cmd.Context(), time.Now().Add(-since), filter,
		func(ev telemetry.Event) { printEvent(cmd.OutOrStdout(), ev, asJSON) })
	if err != nil {
		return fmt.Errorf("read kept telemetry: %w (it needs the admin token, and the hub's telemetry on)", err)
	}
	return nil
}

// checkFilter refuses a pattern that is no NATS subject pattern.
func checkFilter(filter string) error {
	if !server.IsValidSubject(telemetry.SubjectPrefix + filter) {
		return fmt.Errorf("invalid --filter %q: want an event name pattern such as task.*, agent.> or fsm.transition", filter)
	}
	return nil
}

// connectEvents connects with the token the flags give, or anonymously.
func connectEvents(cmd *cobra.Command) (nc *nats.Conn, url string, withToken bool, err error) {
	cfg, err := config.LoadClient(cmd.Flags(), broker.AdminTokenFile)
	if err != nil && !errors.Is(err, config.ErrNoToken) {
		return nil, "", false, err
	}
	opts := append(broker.ClientTLS(cfg.TLS).Options(), nats.Name("agentcom-events"))
	if withToken = cfg.Token != ""; withToken {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if nc, err = nats.Connect(cfg.Hub, opts...); err != nil {
		return nil, "", false, fmt.Errorf("connect to hub at %s: %w", cfg.Hub, broker.ExplainTLS(cfg.Hub, err))
	}
	return nc, cfg.Hub, withToken, nil
}

func watchEvents(cmd *cobra.Command, nc *nats.Conn, filter string, asJSON bool) error {
	out := cmd.OutOrStdout()
	_, err := nc.Subscribe(telemetry.SubjectPrefix+filter, func(m *nats.Msg) {
		var ev telemetry.Event
		switch {
		case asJSON:
			fmt.Fprintln(out, string(m.Data)) // as published
		case json.Unmarshal(m.Data, &ev) == nil:
			printEvent(out, ev, false)
		}
	})
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
func printEvent(w io.Writer, ev telemetry.Event, asJSON bool) {
	if asJSON {
		data, _ := json.Marshal(ev)
		fmt.Fprintln(w, string(data))
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
		out[i] = k + "=" + format(m[k])
	}
	return out
}

// format writes numbers in full (an epoch in ms, not 1.79e+12).
func format(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
