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
	cmd := &cobra.Command{Use: "agent", Short: "Inspect agents and their state machines, and register new ones"}
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
	return group(cmd, list, show, newAgentAddCmd())
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
	cmd := &cobra.Command{Use: "token", Short: "Manage tokens: agents', viewers' and admins' (admin)"}
	config.ClientFlags(cmd.PersistentFlags())
	return group(cmd, newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
}

func newTokenCreateCmd() *cobra.Command {
	var outFile, role string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token (an agent's unless --role says) and print it, or write it to --out",
		Long: "create makes a new token named NAME (one NATS subject token: letters, digits, '_' and '-',\n" +
			"at most 128), replacing any old one of that name, whose connections close. Its role is\n" +
			"agent (NAME is the agent's id), viewer (reads only: dashboards, scripts) or admin. A name\n" +
			"belongs to one token: revoke it before giving it another role. The token is shown once: it\n" +
			"is printed, or with --out FILE written to FILE (mode 0600) for agentcom sidecar --token-file\n" +
			"FILE or the CLI's --token-file.",
		Example: "  agentcom token create a1 --out a1.token\n  agentcom token create --role viewer dashboard",
		Args:    cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.Flags().StringVar(&outFile, "out", "", "write the token to this file (mode 0600) instead of printing it")
	cmd.Flags().StringVar(&role, "role", "agent", "the token's role: agent, viewer or admin")
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
			Name  string `json:"name"`
			Token string `json:"token"`
		}
		raw, err := callInto(cmd, ops.OpTokenCreate, map[string]string{"name": args[0], "role": role}, &out)
		if err != nil {
			return err
		}
		if f == nil {
			return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, out.Token)
				return err
			})
		}
		return writeTokenFile(cmd.OutOrStdout(), f, out.Name, out.Token, *asJSON)
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
func writeTokenFile(w io.Writer, f *os.File, name, token string, asJSON bool) error {
	if err := writeSecret(f, token+"\n", "token file"); err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, map[string]string{"name": name, "token_file": f.Name()})
	}
	_, err := fmt.Fprintf(w, "token of %s written to %s\n", name, f.Name())
	return err
}

// writeSecret writes content (a token, or a configuration that holds
// one) to f, opened readable by its owner only, and closes it.
func writeSecret(f *os.File, content, what string) error {
	if _, err := io.WriteString(f, content); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

type tokenView struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	TokenPrefix string `json:"token_prefix"`
	CreatedAt   string `json:"created_at"`
}

func newTokenListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the named tokens (agents', viewers', admins') by prefix",
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
			fmt.Fprintln(tw, "NAME\tROLE\tTOKEN\tCREATED")
			for _, t := range out.Tokens {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Role, t.TokenPrefix, t.CreatedAt)
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke the token of NAME (an agent's, a viewer's or an admin's) and close its connections",
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
