package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentcom/agentcom/bench"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
)

// benchFlags are bench's flags beside the runner's options.
type benchFlags struct {
	opts                       bench.Options
	tokenFile, token, dataDir  string
	cpuProfile                 string
	asJSON, progress, noRawPub bool
}

func newBenchCmd() *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a hub end to end: burn-down, continuous or latency runs, beside raw JetStream",
		Long: `Measure a hub end to end with in-process workers that speak the agent protocol over their
own NATS connections. By default it runs an embedded hub in a temporary data directory (removed
afterwards) with --sync as its store.sync; --hub runs against a running hub with an admin token.
After each run it measures raw JetStream publishes (one at a time, and asynchronous) for the
same number of messages on an embedded server with the same sync setting.`,
		Example: `  agentcom bench --mode burn-down --tasks 20000 --workers 50 --sync 1s
  agentcom bench --mode latency --tasks 500 --sync both --json
  agentcom bench --mode continuous --duration 30s --submitters 16 --workers 32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f) },
	}
	fs := cmd.Flags()
	o := &f.opts
	fs.StringVar(&o.Mode, "mode", bench.ModeBurnDown, "burn-down, continuous or latency")
	fs.StringVar(&o.Sync, "sync", config.DefaultSync, `store.sync of the embedded hub and the raw server: "always", an interval such as "1s", or "both"`)
	fs.IntVar(&o.Tasks, "tasks", 0, fmt.Sprintf("tasks to run, samples in latency mode (0: %d, %d in latency mode; no cap with --duration)",
		bench.DefaultTasks, bench.DefaultLatencyTasks))
	fs.IntVar(&o.Workers, "workers", 8, "in-process workers (agents), each on its own NATS connection")
	fs.IntVar(&o.Slots, "slots", 1, "tasks each worker takes at once (sent as max_tasks in its hello)")
	fs.BoolVar(&o.Batch, "batch", true, "workers speak the batched protocol: several assignments per push, implied accept, "+
		"completes reported several at a time (--batch=false: one request per accept and per complete)")
	fs.IntVar(&o.Submitters, "submitters", 8, "concurrent submitters, each submitting one task at a time")
	fs.BoolVar(&o.Sidecars, "sidecars", false, "run the workers as `agentcom sidecar` processes (exec `true`) instead of in process")
	fs.StringVar(&o.SidecarBin, "sidecar-bin", "", "the agentcom binary the sidecars run (default: this one)")
	_ = fs.MarkHidden("sidecar-bin")
	fs.DurationVar(&o.Duration, "duration", 0, "continuous mode: submit for this long (0: until --tasks are submitted)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up a run (each sync setting) after this long")
	fs.StringVar(&o.Dir, "dir", "", "where the temporary data directories go (default: the system's temp directory); put it on the disk to measure")
	fs.StringVar(&o.Hub, "hub", "", "a running hub's NATS URL instead of an embedded hub")
	fs.StringVar(&f.tokenFile, "token-file", "", "with --hub: a file holding the admin token")
	fs.StringVar(&f.token, "token", "", "with --hub: the admin token (env AGENTCOM_TOKEN; default: admin.token in --data-dir)")
	fs.StringVar(&f.dataDir, "data-dir", config.DefaultDataDir(), "with --hub: the hub's data directory, to find admin.token")
	fs.BoolVar(&f.noRawPub, "no-raw", false, "skip the raw JetStream publishes")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON document instead of the table")
	fs.BoolVar(&f.progress, "progress", false, "show progress on stderr even when it is not a terminal")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (hub and workers) to this file (go tool pprof)")
	return cmd
}

// profileCPU starts a CPU profile into file ("": none); stop ends it.
func profileCPU(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func runBench(cmd *cobra.Command, f *benchFlags) error {
	o := f.opts
	o.Raw, o.Log = !f.noRawPub, cmd.ErrOrStderr()
	if o.Sidecars && o.SidecarBin == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the agentcom binary for --sidecars: %w", err)
		}
		o.SidecarBin = self
	}
	if o.Hub == "" && (f.tokenFile != "" || f.token != "") {
		return fmt.Errorf("--token-file and --token: only with --hub (the embedded hub makes its own)")
	}
	if o.Hub != "" {
		token, err := benchToken(f)
		if err != nil {
			return err
		}
		o.Token = token
	}
	bar := &progressBar{w: cmd.ErrOrStderr()}
	if f.progress || isTerminal(cmd.ErrOrStderr()) {
		o.Progress = bar.show
	}
	// Ctrl-C ends the run cleanly: the hub stops, its directory goes.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := profileCPU(f.cpuProfile)
	if err != nil {
		return err
	}
	rep, err := bench.Run(ctx, o)
	stopProfile()
	bar.end()
	if err != nil {
		return err
	}
	if f.asJSON {
		return printJSON(cmd.OutOrStdout(), rep)
	}
	return printBenchTable(cmd.OutOrStdout(), rep)
}

// benchToken is the admin token for --hub: --token-file, else what the
// CLI's client commands use (--token, AGENTCOM_TOKEN, admin.token in
// --data-dir).
func benchToken(f *benchFlags) (string, error) {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read --token-file: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("--token-file: %s is empty", f.tokenFile)
	}
	fs := pflag.NewFlagSet("bench-client", pflag.ContinueOnError)
	config.ClientFlags(fs)
	args := []string{"--hub", f.opts.Hub, "--data-dir", f.dataDir}
	if f.token != "" {
		args = append(args, "--token", f.token)
	}
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("parse client flags: %w", err)
	}
	cfg, err := config.LoadClient(fs, broker.AdminTokenFile)
	if err != nil {
		return "", err
	}
	return cfg.Token, nil
}

// benchColumns head the table, a column per figure of benchRow.
var benchColumns = []string{"MODE", "SYNC", "WORKERS", "SLOTS", "TASKS", "SECONDS", "TASKS/S",
	"P50_MS", "P90_MS", "P99_MS", "MAX_MS", "RAW_SYNC/S", "RAW_ASYNC/S", "RSS_MB", "HWM_MB"}

// printBenchTable prints a row per run, then a note for each run that
// declined, aborted or dropped work.
func printBenchTable(w io.Writer, rep bench.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(benchColumns, "\t"))
	var notes []string
	for _, r := range rep.Runs {
		fmt.Fprintln(tw, strings.Join(benchRow(r), "\t"))
		if r.Sidecars {
			notes = append(notes, fmt.Sprintf("sync %s: the workers were agentcom sidecar processes", r.Sync))
		}
		if r.Declines+r.Aborts+r.Dropped > 0 {
			notes = append(notes, fmt.Sprintf("sync %s: %d declines, %d aborts, %d dropped assignments",
				r.Sync, r.Declines, r.Aborts, r.Dropped))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}

// benchRow is one run's figures: "-" where one does not apply.
func benchRow(r bench.Result) []string {
	row := []string{r.Mode, r.Sync, fmt.Sprint(r.Workers), fmt.Sprint(r.Slots), fmt.Sprint(r.Tasks),
		fmt.Sprintf("%.2f", r.Seconds), fmt.Sprintf("%.0f", r.TasksPerS)}
	if l := r.Latency; l != nil {
		row = append(row, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	} else {
		row = append(row, "-", "-", "-", "-")
	}
	if r.Raw != nil {
		row = append(row, fmt.Sprintf("%.0f", r.Raw.SyncPerS), fmt.Sprintf("%.0f", r.Raw.AsyncPerS))
	} else {
		row = append(row, "-", "-")
	}
	if r.Memory != nil {
		row = append(row, fmt.Sprintf("%.0f", r.Memory.RSSMB), fmt.Sprintf("%.0f", r.Memory.HWMMB))
	} else {
		row = append(row, "-", "-")
	}
	return row
}

func ms(v float64) string { return fmt.Sprintf("%.2f", v) }

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar rewrites one line of w with \r; a new stage starts a new line.
type progressBar struct {
	w     io.Writer
	stage string
	shown bool
}

const barWidth = 24

func (b *progressBar) show(p bench.Progress) {
	stage := p.Mode + " sync=" + p.Sync + " " + p.Stage
	if b.shown && stage != b.stage {
		fmt.Fprintln(b.w)
	}
	b.stage, b.shown = stage, true
	filled := 0
	if p.Total > 0 {
		filled = min(barWidth, barWidth*p.Done/p.Total)
	}
	bar := strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled)
	total := "?"
	if p.Total > 0 {
		total = fmt.Sprint(p.Total)
	}
	fmt.Fprintf(b.w, "\r%-36s [%s] %d/%s %6.1fs   ", stage, bar, p.Done, total, p.Elapsed.Seconds())
}

// end finishes the last line.
func (b *progressBar) end() {
	if b.shown {
		fmt.Fprintln(b.w)
	}
}
