package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// small is a quick run of a mode on an embedded hub.
func small(mode string) Options {
	return Options{Mode: mode, Sync: "1s", Tasks: 200, Workers: 4, Slots: 1, Submitters: 4, Raw: true,
		Timeout: time.Minute}
}

// requireSound checks a run's figures: every task completed, by a healthy
// run, and every rate positive.
func requireSound(t *testing.T, r Result, tasks int) {
	t.Helper()
	require.Equal(t, tasks, r.Tasks)
	require.Equal(t, "embedded", r.Target)
	require.Positive(t, r.Seconds)
	require.Positive(t, r.TasksPerS)
	require.Zero(t, r.Declines+r.Aborts+r.Dropped, "a healthy run declines, aborts and drops nothing")
	require.NotNil(t, r.Raw)
	require.Equal(t, tasks, r.Raw.Messages)
	require.Positive(t, r.Raw.SyncPerS)
	require.Positive(t, r.Raw.AsyncPerS)
	require.NotNil(t, r.Memory)
	require.Positive(t, r.Memory.HWMMB)
}

func TestBenchModes(t *testing.T) {
	for _, mode := range Modes {
		t.Run(mode, func(t *testing.T) {
			o := small(mode)
			if mode == ModeLatency {
				o.Tasks = 50
			}
			var seen int
			o.Progress = func(Progress) { seen++ }
			rep, err := Run(context.Background(), o)
			require.NoError(t, err)
			require.Len(t, rep.Runs, 1)
			r := rep.Runs[0]
			requireSound(t, r, o.Tasks)
			require.Equal(t, "1s", r.Sync)
			require.Positive(t, seen, "progress was reported")
			if mode == ModeBurnDown {
				require.Positive(t, r.SubmitPerS, "the prefill's rate")
			} else {
				require.NotNil(t, r.Latency)
				require.Equal(t, o.Tasks, r.Latency.Samples)
				require.Positive(t, r.Latency.P50)
				require.LessOrEqual(t, r.Latency.P50, r.Latency.P99)
				require.LessOrEqual(t, r.Latency.P99, r.Latency.Max)
			}
			_, err = json.Marshal(rep)
			require.NoError(t, err)
		})
	}
}
