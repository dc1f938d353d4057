package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/mcp"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/sidecar"
)

func newMCPCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mcp", Args: cobra.NoArgs,
		Short: "Serve the hub as MCP tools over stdio, for agent programs (docs/mcp.md)",
		Long: "Serve the hub as Model Context Protocol tools on stdin and stdout: one tool per operation " +
			"(task_submit, task_get, goal_get, ...), called over NATS with the client's token (the admin.token " +
			"file by default, or AGENTCOM_TOKEN_FILE; a viewer's token may only read). Run for a task by the " +
			"sidecar (AGENTCOM_SIDECAR_SOCKET set, or --sidecar), it serves the agent's tools instead: its task, " +
			"progress, complete, messages and reservations, through the sidecar, as the agent."}
	config.ClientFlags(cmd.Flags())
	socket := sidecarFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *socket != "" { // run for a task: the agent's tools, through its sidecar
			return serveMCP(cmd, mcp.NewAgentServer(relayTo(*socket), versionText()))
		}
		c, err := dialClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		return serveMCP(cmd, mcp.NewServer(mcp.NATSCaller{Client: c}, versionText()))
	}
	return cmd
}

func serveMCP(cmd *cobra.Command, s *sdk.Server) error {
	if err := s.Run(cmd.Context(), &sdk.StdioTransport{}); err != nil {
		return fmt.Errorf("serve mcp: %w", err)
	}
	return nil
}

// relayTo calls the sidecar's relay on socket; its refusals are the hub's
// (or the relay's) error words.
func relayTo(socket string) mcp.Relay {
	return func(ctx context.Context, tool, verb string, body json.RawMessage) (json.RawMessage, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute) // a hub that does not answer is a tool error
		defer cancel()
		raw, err := sidecar.RelayCall(sidecar.WithTool(ctx, tool), socket, verb, logsink.RequestID(ctx), body, nil)
		var he *sidecar.HubError
		if errors.As(err, &he) {
			return nil, &client.CallError{Status: he.Status, Body: ops.ErrorBody{Error: he.Code, Detail: he.Detail}}
		}
		return raw, err
	}
}
