package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Inspect agents and their state machines"}
	config.ClientFlags(cmd.PersistentFlags())
	list := &cobra.Command{
		Use:   "list",
		Short: "List agents with their state, task and flags",
		Args:  cobra.NoArgs,
	}
	listJSON := jsonFlag(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		var out struct {
			Agents []domain.Agent `json:"agents"`
		}
		raw, err := callInto(cmd, ops.OpAgentList, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *listJSON, raw, func(w io.Writer) error { return printAgents(w, out.Agents) })
	}
	show := &cobra.Command{
		Use:   "show AGENT_ID",
		Short: "Show one agent",
		Args:  cobra.ExactArgs(1),
	}
	showJSON := jsonFlag(show)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		var a domain.Agent
		raw, err := callInto(cmd, ops.OpAgentGet, map[string]string{"agent_id": args[0]}, &a)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *showJSON, raw, func(w io.Writer) error { return printAgents(w, []domain.Agent{a}) })
	}
	return group(cmd, list, show)
}

func printAgents(w io.Writer, agents []domain.Agent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tSTATE\tTASK\tSLOTS\tCAPABILITIES\tFLAGS\tSINCE")
	for _, a := range agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", a.ID, a.State, taskCell(a), len(a.Tasks), a.Slots(),
			dash(strings.Join(a.Capabilities, ",")), dash(strings.Join(a.Flags(), ",")), a.LastStateChange.Format(time.RFC3339))
	}
	return tw.Flush()
}

// taskCell names the agent's first task, and how many more it holds.
func taskCell(a domain.Agent) string {
	if len(a.Tasks) > 1 {
		return fmt.Sprintf("%s +%d", a.CurrentTask, len(a.Tasks)-1)
	}
	return dash(a.CurrentTask)
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage agent tokens (admin)"}
	config.ClientFlags(cmd.PersistentFlags())
	return group(cmd, newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
}

func newTokenCreateCmd() *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:   "create AGENT_ID",
		Short: "Create a token for an agent (replacing its old one) and print it, or write it to --out",
		Long: "create makes a new token for AGENT_ID (one NATS subject token: letters, digits, '_' and '-',\n" +
			"at most 128), replacing any old one, whose connections close. The token is shown once: it is\n" +
			"printed, or with --out FILE written to FILE (mode 0600) for agentcom sidecar --token-file FILE.",
		Args: cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.Flags().StringVar(&outFile, "out", "", "write the token to this file (mode 0600) instead of printing it")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var f *os.File
		if outFile != "" {
			// Opened before the hub replaces the token: a bad path
			// leaves the agent's old token working.
			var err error
			if f, err = openTokenFile(outFile); err != nil {
				return err
			}
			defer f.Close()
		}
		var out struct {
			AgentID string `json:"agent_id"`
			Token   string `json:"token"`
		}
		raw, err := callInto(cmd, ops.OpTokenCreate, map[string]string{"agent_id": args[0]}, &out)
		if err != nil {
			return err
		}
		if f == nil {
			return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, out.Token)
				return err
			})
		}
		return writeTokenFile(cmd.OutOrStdout(), f, out.AgentID, out.Token, *asJSON)
	}
	return cmd
}

// openTokenFile creates or truncates path, readable by its owner only.
func openTokenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open token file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return nil, fmt.Errorf("restrict token file %s: %w", path, err)
	}
	return f, nil
}

// writeTokenFile writes the token to f and says where, never the token.
func writeTokenFile(w io.Writer, f *os.File, agentID, token string, asJSON bool) error {
	if _, err := fmt.Fprintln(f, token); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	if asJSON {
		return printJSON(w, map[string]string{"agent_id": agentID, "token_file": f.Name()})
	}
	_, err := fmt.Fprintf(w, "token of %s written to %s\n", agentID, f.Name())
	return err
}

type tokenView struct {
	AgentID     string `json:"agent_id"`
	TokenPrefix string `json:"token_prefix"`
	CreatedAt   string `json:"created_at"`
}

func newTokenListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agent tokens by prefix",
		Args:  cobra.NoArgs,
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out struct {
			Tokens []tokenView `json:"tokens"`
		}
		raw, err := callInto(cmd, ops.OpTokenList, nil, &out)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tTOKEN\tCREATED")
			for _, t := range out.Tokens {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.AgentID, t.TokenPrefix, t.CreatedAt)
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke AGENT_ID",
		Short: "Revoke an agent's token and close its connections",
		Args:  cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		raw, err := callInto(cmd, ops.OpTokenRevoke, map[string]string{"agent_id": args[0]}, nil)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "%s revoked\n", args[0])
			return err
		})
	}
	return cmd
}
