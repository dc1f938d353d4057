// Command agentcom is AgentCom's single binary: the hub, its client
// commands and offline replay. This package only wires the other packages
// together.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/sidecar"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "agentcom:", logsink.ScrubText(err.Error()))
		var ce *client.CallError
		var he *sidecar.HubError
		if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 || errors.As(err, &he) && he.Status >= 400 && he.Status < 500 {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "agentcom",
		Short:         "AgentCom coordinates AI agents: a task queue and agent hub on embedded NATS JetStream",
		Version:       versionText(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.AddCommand(newHubCmd(), newTaskCmd(), newReplayCmd(), newAgentCmd(), newTokenCmd(), newSidecarCmd(), newEventsCmd(), newBenchCmd(), newAdminCmd(), newUsageCmd(), newConfigCmd(), newAlertsCmd(), newTopCmd(),
		newSendCmd(), newInboxCmd(), newReserveCmd(), newReleaseCmd(), newChannelCmd(), newMessagesCmd(),
		newGoalCmd(), newScheduleCmd(), newMCPCmd())
	root.AddCommand(newStoreCmds()...)
	root.AddCommand(newStoreGroupCmd())
	return root
}
