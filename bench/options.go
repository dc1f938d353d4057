package bench

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Modes of a run.
const (
	// ModeBurnDown queues every task first, then starts the workers and
	// times them until the queue is worked off.
	ModeBurnDown = "burn-down"
	// ModeContinuous runs submitters and workers at once.
	ModeContinuous = "continuous"
	// ModeLatency submits one task at a time to idle workers and times
	// each from submit to the assignment push.
	ModeLatency = "latency"
)

// Modes are the valid modes.
var Modes = []string{ModeBurnDown, ModeContinuous, ModeLatency}

// SyncBoth runs every mode once with store.sync always and once with 1s.
const SyncBoth = "both"

// Default sizes: a mode's task count when Tasks is 0.
const (
	DefaultTasks        = 2000
	DefaultLatencyTasks = 200
)

// Options are one bench invocation.
type Options struct {
	Mode string
	// Sync is the store.sync of the embedded hub and of the raw JetStream
	// server: "always", an interval such as "1s", or "both".
	Sync string
	// Tasks is how many tasks to run (samples in latency mode); 0 is the
	// mode's default. In continuous mode with Duration, it is a cap (0: none).
	Tasks   int
	Workers int
	Slots   int
	// Batch makes the workers speak the batched protocol: several
	// assignments per push, implied acceptance, completes reported
	// several at a time.
	Batch      bool
	Submitters int
	// Sidecars runs the workers as `agentcom sidecar` processes of
	// SidecarBin, each running `true` per task, instead of in process.
	Sidecars   bool
	SidecarBin string
	// Duration bounds the submitting of continuous mode.
	Duration time.Duration
	// Hub and Token name a running hub (an admin token); empty Hub runs an
	// embedded one.
	Hub, Token string
	// Dir is where the embedded hub's and the raw server's temporary
	// directories are made ("": os.TempDir()); put it on the disk to
	// measure.
	Dir string
	// Raw measures raw JetStream publishes beside the hub.
	Raw bool
	// Timeout bounds each run, hub start and stop included.
	Timeout time.Duration
	// Log receives the embedded hub's warnings and errors (nil: none).
	Log io.Writer
	// Progress, if not nil, is called about five times a second during a
	// run with what is done so far.
	Progress func(Progress)
}

// Progress is how far a run is.
type Progress struct {
	Mode, Sync, Stage string
	Done, Total       int
	Elapsed           time.Duration
}

// Stages of a run, for progress.
const (
	StagePrefill = "prefill"
	StageRun     = "run"
	StageRawSync = "raw sync publish"
	StageRawAsyn = "raw async publish"
)

// Validate reports every bad option at once, each naming its flag.
func (o Options) Validate() error {
	var errs []error
	if !oneOf(o.Mode, Modes) {
		errs = append(errs, fmt.Errorf("--mode: unknown mode %q: use burn-down, continuous or latency", o.Mode))
	}
	if _, err := o.Syncs(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, atLeast("--workers", o.Workers, 1), atLeast("--slots", o.Slots, 1),
		atLeast("--submitters", o.Submitters, 1), atLeast("--tasks", o.Tasks, 0))
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration: %s is negative", o.Duration))
	}
	if o.Duration > 0 && o.Mode != ModeContinuous {
		errs = append(errs, fmt.Errorf("--duration: only for --mode continuous, not %s", o.Mode))
	}
	if o.Sidecars && o.Mode == ModeLatency {
		errs = append(errs, errors.New("--sidecars: not in latency mode, which needs in-process workers to see each push"))
	}
	if o.Sidecars && o.SidecarBin == "" {
		errs = append(errs, errors.New("--sidecars: no agentcom binary to run"))
	}
	if o.Hub != "" && o.Token == "" {
		errs = append(errs, errors.New("--hub: a running hub needs an admin token (--token-file, --token or the data dir's admin.token)"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: must be positive, not %s", o.Timeout))
	}
	return errors.Join(errs...)
}

// Syncs are the store.sync settings to run, in order.
func (o Options) Syncs() ([]string, error) {
	switch o.Sync {
	case SyncBoth:
		return []string{"always", "1s"}, nil
	case "always":
		return []string{"always"}, nil
	}
	if d, err := time.ParseDuration(o.Sync); err == nil && d >= time.Millisecond {
		return []string{o.Sync}, nil
	}
	return nil, fmt.Errorf(`--sync: %q is not "always", an interval of at least 1ms such as "1s", or "both"`, o.Sync)
}

// syncInterval is a valid sync setting as the store takes it: 0 for always.
func syncInterval(s string) time.Duration {
	d, _ := time.ParseDuration(s) // "always" does not parse: 0
	return d
}

// tasks is the run's task count: Tasks, or the mode's default.
func (o Options) tasks() int {
	switch {
	case o.Tasks > 0:
		return o.Tasks
	case o.Mode == ModeLatency:
		return DefaultLatencyTasks
	case o.Mode == ModeContinuous && o.Duration > 0:
		return 0 // no cap
	}
	return DefaultTasks
}

func atLeast(flag string, n, least int) error {
	if n < least {
		return fmt.Errorf("%s: must be at least %d, not %d", flag, least, n)
	}
	return nil
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}
