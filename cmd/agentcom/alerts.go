package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/protocol/ops"
)

func newAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Short: "Show every alert rule's state, or acknowledge an active alert",
		Args: cobra.NoArgs}
	config.ClientFlags(cmd.PersistentFlags())
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out ops.Alerts
		raw, err := callInto(cmd, ops.OpAlertList, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error { return printAlerts(w, out.Alerts) })
	}
	ack := &cobra.Command{Use: "ack RULE", Aliases: []string{"acknowledge"}, Args: cobra.ExactArgs(1),
		Short: "Acknowledge an active alert: it stays quiet until its condition clears and returns (admin)"}
	ackJSON := jsonFlag(ack)
	ack.RunE = func(cmd *cobra.Command, args []string) error {
		var a ops.Alert
		raw, err := callInto(cmd, ops.OpAlertAck, map[string]string{"rule": args[0]}, &a)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *ackJSON, raw, func(w io.Writer) error { return printAlerts(w, []ops.Alert{a}) })
	}
	cmd.AddCommand(ack)
	return cmd
}

func printAlerts(w io.Writer, alerts []ops.Alert) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSEVERITY\tSTATE\tSINCE\tMESSAGE")
	for _, a := range alerts {
		since := "-"
		for _, t := range []*time.Time{a.ClearedAt, a.AcknowledgedAt, a.FiredAt} {
			if t != nil {
				since = t.Format(time.RFC3339)
				break
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Rule, a.Severity, a.State, since, dash(a.Message))
	}
	return tw.Flush()
}
