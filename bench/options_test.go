package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBenchOptionsRefused(t *testing.T) {
	good := small(ModeBurnDown)
	require.NoError(t, good.Validate())
	for name, c := range map[string]struct {
		edit func(*Options)
		want string
	}{
		"no workers":     {func(o *Options) { o.Workers = 0 }, "--workers: must be at least 1, not 0"},
		"no slots":       {func(o *Options) { o.Slots = 0 }, "--slots: must be at least 1, not 0"},
		"no submitters":  {func(o *Options) { o.Submitters = -1 }, "--submitters: must be at least 1, not -1"},
		"negative tasks": {func(o *Options) { o.Tasks = -5 }, "--tasks: must be at least 0, not -5"},
		"unknown mode":   {func(o *Options) { o.Mode = "sprint" }, `--mode: unknown mode "sprint"`},
		"bad sync":       {func(o *Options) { o.Sync = "sometimes" }, `--sync: "sometimes" is not "always"`},
		"tiny sync":      {func(o *Options) { o.Sync = "1us" }, `--sync: "1us"`},
		"duration":       {func(o *Options) { o.Duration = time.Second }, "--duration: only for --mode continuous"},
		"hub no token":   {func(o *Options) { o.Hub = "nats://127.0.0.1:1" }, "--hub: a running hub needs an admin token"},
		"sidecars latency": {func(o *Options) { o.Mode, o.Sidecars, o.SidecarBin = ModeLatency, true, "agentcom" },
			"--sidecars: not in latency mode"},
		"sidecars no bin": {func(o *Options) { o.Sidecars = true }, "--sidecars: no agentcom binary to run"},
		"no timeout":      {func(o *Options) { o.Timeout = 0 }, "--timeout: must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			o := good
			c.edit(&o)
			require.ErrorContains(t, o.Validate(), c.want)
			_, err := Run(context.Background(), o)
			require.ErrorContains(t, err, c.want, "Run validates first")
		})
	}
}

func TestBenchOptionsEveryErrorAtOnce(t *testing.T) {
	o := small("sprint")
	o.Workers, o.Sync = 0, "sometimes"
	err := o.Validate()
	require.ErrorContains(t, err, "--mode")
	require.ErrorContains(t, err, "--workers")
	require.ErrorContains(t, err, "--sync")
}

func TestBenchSyncBoth(t *testing.T) {
	o := small(ModeLatency)
	o.Sync = SyncBoth
	syncs, err := o.Syncs()
	require.NoError(t, err)
	require.Equal(t, []string{"always", "1s"}, syncs)
}

func TestBenchDistribution(t *testing.T) {
	require.Nil(t, distribution(nil))
	ms := make([]float64, 100)
	for i := range ms {
		ms[i] = float64(100 - i)
	}
	d := distribution(ms)
	require.Equal(t, Latency{Samples: 100, P50: 51, P90: 91, P99: 100, Max: 100}, *d)
}
