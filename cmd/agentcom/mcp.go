package main

import (
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/mcp"
)

func newMCPCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mcp", Args: cobra.NoArgs,
		Short: "Serve the hub as MCP tools over stdio, for agent programs (docs/mcp.md)",
		Long: "Serve the hub as Model Context Protocol tools on stdin and stdout: one tool per operation " +
			"(task_submit, task_get, goal_get, ...), called over NATS with the client's token (the admin.token " +
			"file by default, or AGENTCOM_TOKEN_FILE; a viewer's token may only read)."}
	config.ClientFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.LoadClient(cmd.Flags(), broker.AdminTokenFile)
		if err != nil {
			return err
		}
		c, err := client.Dial(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := mcp.NewServer(mcp.NATSCaller{Client: c}, versionText()).Run(cmd.Context(), &sdk.StdioTransport{}); err != nil {
			return fmt.Errorf("serve mcp: %w", err)
		}
		return nil
	}
	return cmd
}
