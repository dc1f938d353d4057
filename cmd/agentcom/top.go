package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

func newTopCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "top", Args: cobra.NoArgs,
		Short: "A live terminal view of the hub: agents, the queue by priority, rates and alerts (Ctrl-C ends it)"}
	config.ClientFlags(cmd.Flags())
	every := cmd.Flags().Duration("interval", time.Second, "how often the view is drawn again")
	once := cmd.Flags().Bool("once", false, "draw one view, without clearing the screen, and exit")
	asJSON := cmd.Flags().Bool("json", false, "print one view's replies as JSON ({metrics, agents, alerts}) and exit")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *every < 100*time.Millisecond {
			return fmt.Errorf("invalid --interval %s: at least 100ms", *every)
		}
		if *asJSON {
			f, err := readFrame(cmd)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"metrics": f.metrics, "agents": f.agents, "alerts": f.alerts})
		}
		var last *frame
		for {
			f, err := readFrame(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !*once {
				fmt.Fprint(out, clearScreen)
			}
			if err := f.draw(out, last); err != nil || *once {
				return err
			}
			last = &f
			select {
			case <-cmd.Context().Done():
				return nil
			case <-time.After(*every):
			}
		}
	}
	return cmd
}

// frame is what one view shows.
type frame struct {
	at      time.Time
	metrics ops.MetricsSnapshot
	agents  []domain.Agent
	alerts  []ops.Alert
}

func readFrame(cmd *cobra.Command) (frame, error) {
	f := frame{at: time.Now()}
	var agents struct {
		Agents []domain.Agent `json:"agents"`
	}
	var alerts ops.Alerts
	for _, c := range []struct {
		op  ops.Op
		out any
	}{{ops.OpMetricsGet, &f.metrics}, {ops.OpAgentList, &agents}, {ops.OpAlertList, &alerts}} {
		if _, err := callInto(cmd, c.op, nil, c.out); err != nil {
			return f, err
		}
	}
	f.agents, f.alerts = agents.Agents, alerts.Alerts
	return f, nil
}

// draw writes the view; with the last one, the rates since.
func (f frame) draw(w io.Writer, last *frame) error {
	m := f.metrics
	rate := "-"
	if last != nil {
		done := m.ErrorRates.Cumulative.Completed - last.metrics.ErrorRates.Cumulative.Completed
		rate = fmt.Sprintf("%.1f/s", float64(done)/f.at.Sub(last.at).Seconds())
	}
	u := m.AgentUtilization.System
	fmt.Fprintf(w, "agentcom top   %s   store %s, lag %d\n\n", f.at.Format(time.TimeOnly), m.StoreHealth.Status, m.StoreHealth.Lag)
	fmt.Fprintf(w, "queue %d (%s)   %s   agents %d online, %d working, %.0f%% of slots busy\n", m.QueueDepth.Current,
		m.QueueDepth.Trend, queueByPriority(m.QueueDepth.ByPriority), u.Online, u.Working, u.UtilizationPct)
	fmt.Fprintf(w, "completed %s   failed %.0f%% (5 min)   wait p50 %.0f ms p90 %.0f ms   run p50 %.0f ms p90 %.0f ms\n\n",
		rate, m.ErrorRates.Window.FailureRatePct, m.QueueWait.Window.P50MS, m.QueueWait.Window.P90MS,
		m.TaskLatency.Window.P50MS, m.TaskLatency.Window.P90MS)
	if err := printAgents(w, f.agents); err != nil {
		return err
	}
	firing := slices.DeleteFunc(slices.Clone(f.alerts), func(a ops.Alert) bool { return a.State == "inactive" })
	if len(firing) == 0 {
		_, err := fmt.Fprintln(w, "\nno alerts")
		return err
	}
	fmt.Fprintln(w)
	return printAlerts(w, firing)
}

// queueByPriority is the queue by priority, most urgent first.
func queueByPriority(by map[string]int) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	for _, p := range domain.Priorities {
		fmt.Fprintf(tw, "%s %d  ", p, by[p.String()])
	}
	_ = tw.Flush()
	return strings.TrimSpace(b.String())
}
