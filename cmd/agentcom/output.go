package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// jsonFlag adds --json to cmd: print the hub's reply as JSON, as the HTTP
// API gives it, instead of the text meant for a person.
func jsonFlag(cmd *cobra.Command) *bool {
	return cmd.Flags().Bool("json", false, "print the reply as JSON (the HTTP API's body), for scripts")
}

// emit prints raw (a hub reply) indented when asJSON, else what human
// writes.
func emit(w io.Writer, asJSON bool, raw json.RawMessage, human func(io.Writer) error) error {
	if asJSON {
		return printRawJSON(w, raw)
	}
	return human(w)
}

// printRawJSON indents a reply, keeping every field the hub sent.
func printRawJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("indent reply: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// groupRunE answers a group command (task, agent, token) run without a
// known subcommand: cobra suggests only at the top level, so a mistyped
// `agentcom task lst` would print help and exit 0.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 || args[0] == "help" {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return fmt.Errorf("%s\n\nRun '%s --help' for its commands", msg, cmd.CommandPath())
}

// group makes cmd a group of subcommands that refuses unknown ones with a
// suggestion. Unknown flags are let through to groupRunE, so that
// `task lst --json` is told about lst, not about --json.
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = groupRunE
	cmd.FParseErrWhitelist.UnknownFlags = true
	cmd.SuggestionsMinimumDistance = 2 // cobra sets it only on the root
	cmd.AddCommand(subs...)
	return cmd
}
