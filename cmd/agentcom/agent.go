package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
)

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Inspect agents and their state machines"}
	config.ClientFlags(cmd.PersistentFlags())
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List agents with their state, task and flags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Agents []domain.Agent `json:"agents"`
			}
			if err := call(cmd, broker.CmdAgentList, nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			printAgents(cmd.OutOrStdout(), out.Agents)
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use:   "show AGENT_ID",
		Short: "Show one agent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a domain.Agent
			if err := call(cmd, broker.CmdAgentGet, map[string]string{"agent_id": args[0]}, &a); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), a)
			}
			printAgents(cmd.OutOrStdout(), []domain.Agent{a})
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list, show)
	return cmd
}

func printAgents(w io.Writer, agents []domain.Agent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tSTATE\tTASK\tCAPABILITIES\tFLAGS\tSINCE")
	for _, a := range agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, dash(a.CurrentTask),
			dash(strings.Join(a.Capabilities, ",")), dash(strings.Join(a.Flags(), ",")), a.LastStateChange.Format(time.RFC3339))
	}
	tw.Flush()
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage agent tokens (admin)"}
	config.ClientFlags(cmd.PersistentFlags())
	create := &cobra.Command{
		Use:   "create AGENT_ID",
		Short: "Create a token for an agent (replacing its old one) and print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]string
			if err := call(cmd, broker.CmdTokenCreate, map[string]string{"agent_id": args[0]}, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out["token"])
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List agent tokens by prefix",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Tokens []map[string]string `json:"tokens"`
			}
			if err := call(cmd, broker.CmdTokenList, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tTOKEN\tCREATED")
			for _, t := range out.Tokens {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t["agent_id"], t["token_prefix"], t["created_at"])
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke AGENT_ID",
		Short: "Revoke an agent's token and close its connections",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := call(cmd, broker.CmdTokenRevoke, map[string]string{"agent_id": args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
