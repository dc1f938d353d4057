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

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Read and change the settings a running hub takes without a restart"}
	config.ClientFlags(cmd.PersistentFlags())
	get := &cobra.Command{Use: "get [KEY]", Args: cobra.MaximumNArgs(1),
		Short: "Every run-time setting with its value in force (or one)"}
	getJSON := jsonFlag(get)
	get.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			return settingCall(cmd, *getJSON, ops.OpConfigGet, map[string]string{"key": args[0]})
		}
		var out ops.Settings
		raw, err := callInto(cmd, ops.OpConfigList, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *getJSON, raw, func(w io.Writer) error { return printSettings(w, out.Settings) })
	}
	set := &cobra.Command{Use: "set KEY VALUE", Args: cobra.ExactArgs(2),
		Short: "Change a setting now: stored as an event, applied at once, kept across restarts (admin)"}
	setJSON := jsonFlag(set)
	set.RunE = func(cmd *cobra.Command, args []string) error {
		return settingCall(cmd, *setJSON, ops.OpConfigSet, map[string]string{"key": args[0], "value": args[1]})
	}
	reset := &cobra.Command{Use: "reset KEY", Args: cobra.ExactArgs(1),
		Short: "Return a setting to the configuration file's value (admin)"}
	resetJSON := jsonFlag(reset)
	reset.RunE = func(cmd *cobra.Command, args []string) error {
		return settingCall(cmd, *resetJSON, ops.OpConfigReset, map[string]string{"key": args[0]})
	}
	return group(cmd, get, set, reset)
}

// settingCall calls an operation that answers one setting, and prints it.
func settingCall(cmd *cobra.Command, asJSON bool, op ops.Op, req map[string]string) error {
	var s ops.Setting
	raw, err := callInto(cmd, op, req, &s)
	if err != nil {
		return err
	}
	return emit(cmd.OutOrStdout(), asJSON, raw, func(w io.Writer) error { return printSettings(w, []ops.Setting{s}) })
}

func printSettings(w io.Writer, settings []ops.Setting) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tFILE VALUE\tCHANGED")
	for _, s := range settings {
		changed := "-"
		if s.ChangedAt != nil {
			changed = s.ChangedAt.Format(time.RFC3339) + " by " + dash(s.ChangedBy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Key, dash(s.Value), s.Source, dash(s.FileValue), changed)
	}
	return tw.Flush()
}
