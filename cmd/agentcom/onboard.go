package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/protocol/ops"
)

func newAgentAddCmd() *cobra.Command {
	var req ops.OnboardRequest
	var outFile string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Register a new agent: make its token and print a ready sidecar configuration (admin)",
		Long: "add registers agent NAME with the hub (POST /api/onboard/register) and prints the YAML\n" +
			"configuration of its sidecar, token included, or writes it to --out FILE (mode 0600). Run it\n" +
			"with agentcom sidecar --config FILE. A NAME that has a token already is refused: agentcom token\n" +
			"create NAME rotates a token.",
		Example: "  agentcom agent add builder --capability go --exec ./run-task.sh --out builder.yaml\n" +
			"  agentcom sidecar --config builder.yaml",
		Args: cobra.ExactArgs(1),
	}
	asJSON := jsonFlag(cmd)
	cmd.Flags().StringSliceVar(&req.Capabilities, "capability", nil, "what the agent can do (repeat, or comma-separated)")
	cmd.Flags().IntVar(&req.MaxTasks, "max-tasks", 1, "tasks the sidecar works on at once")
	cmd.Flags().StringVar(&req.Exec, "exec", "", "the shell command the sidecar runs for each task (exec mode)")
	cmd.Flags().StringVar(&req.Wake, "wake", "", "the command that wakes the agent for a task (wake mode)")
	cmd.Flags().StringVar(&outFile, "out", "", "write the sidecar configuration to this new file (mode 0600; an existing file is refused)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var f *os.File
		if outFile != "" { // made first: a bad path registers nothing
			var err error
			if f, err = os.OpenFile(outFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return fmt.Errorf("create sidecar config (--out): %w", err)
			}
			defer f.Close()
		}
		req.AgentID = args[0]
		var out ops.Onboarded
		raw, err := callInto(cmd, ops.OpOnboard, req, &out)
		if err != nil {
			if f != nil {
				_ = os.Remove(f.Name()) // still empty: nothing to keep
			}
			return err
		}
		if f == nil {
			return emit(cmd.OutOrStdout(), *asJSON, raw, func(w io.Writer) error {
				_, err := io.WriteString(w, out.SidecarConfig)
				return err
			})
		}
		return writeSidecarConfig(cmd.OutOrStdout(), f, out, *asJSON)
	}
	return cmd
}

// writeSidecarConfig writes the configuration to f and says where, never
// the token.
func writeSidecarConfig(w io.Writer, f *os.File, out ops.Onboarded, asJSON bool) error {
	if err := writeSecret(f, out.SidecarConfig, "sidecar config"); err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, map[string]string{"agent_id": out.AgentID, "config_file": f.Name(), "nats_url": out.NATSURL})
	}
	_, err := fmt.Fprintf(w, "agent %s registered; its sidecar configuration is in %s: agentcom sidecar --config %s\n",
		out.AgentID, f.Name(), f.Name())
	return err
}
