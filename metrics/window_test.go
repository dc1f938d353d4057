package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/protocol/ops"
)

func TestSummariseIsNearestRank(t *testing.T) {
	t.Parallel()
	require.Equal(t, ops.Latency{}, summarise(nil))
	ms := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	require.Equal(t, ops.Latency{Count: 10, MinMS: 1, MaxMS: 10, MeanMS: 5.5, P50MS: 5, P90MS: 9, P99MS: 10}, summarise(ms))
}

func TestQuantileInterpolatesWithinABucket(t *testing.T) {
	t.Parallel()
	cum := make([]float64, len(durationBuckets)) // 4 samples in (0.5, 1], none below
	for i, b := range durationBuckets {
		if b >= 1 {
			cum[i] = 4
		}
	}
	require.InDelta(t, 0.75, quantile(0.5, 4, cum, 1), 1e-9, "rank 2 of 4 in (0.5, 1]")
	require.InDelta(t, 1.0, quantile(1, 4, cum, 1), 1e-9)
}

func TestTrendIsTheSlopesSign(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	series := func(depths ...int) []point {
		out := make([]point, len(depths))
		for i, d := range depths {
			out[i] = point{at: at.Add(time.Duration(i) * time.Minute), depth: d}
		}
		return out
	}
	require.Equal(t, "growing", trend(series(0, 2, 4, 6)))
	require.Equal(t, "shrinking", trend(series(9, 6, 3, 0)))
	require.Equal(t, "steady", trend(series(5, 5, 6, 5)))
	require.Equal(t, "steady", trend(series(5)))
}

func TestWindowsKeepTheRecentAndBoundTheirSize(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var d durations
	for i := range 3 * maxSamples {
		d.add(at.Add(time.Duration(i)*time.Millisecond), float64(i))
	}
	require.LessOrEqual(t, len(d.samples), 2*maxSamples)
	l := d.since(at.Add(time.Duration(3*maxSamples-10) * time.Millisecond))
	require.Equal(t, 10, l.Count, "the last 10 ms hold 10 samples")
}
