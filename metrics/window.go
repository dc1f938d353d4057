package metrics

import (
	"math"
	"slices"
	"time"

	"github.com/agentcom/agentcom/protocol/ops"
)

// maxSamples bounds a window's samples, as the original's 10,000
// durations: past twice that the oldest half goes (amortised, not a
// copy per event).
const maxSamples = 10_000

// bounded keeps the newest maxSamples of s once it has twice that.
func bounded[T any](s []T) []T {
	if len(s) < 2*maxSamples {
		return s
	}
	return append(s[:0:0], s[len(s)-maxSamples:]...)
}

// sample is one duration and when it ended.
type sample struct {
	at time.Time
	ms float64
}

// durations keeps the recent durations of one kind (time in queue, run
// time) for exact percentiles over a window.
type durations struct {
	samples []sample // oldest first
}

func (d *durations) add(at time.Time, ms float64) {
	d.samples = append(bounded(d.samples), sample{at: at, ms: ms})
}

// since drops the samples before cut and returns the rest's summary.
func (d *durations) since(cut time.Time) ops.Latency {
	i, _ := slices.BinarySearchFunc(d.samples, cut, func(s sample, t time.Time) int { return s.at.Compare(t) })
	d.samples = d.samples[i:]
	ms := make([]float64, len(d.samples))
	for i, s := range d.samples {
		ms[i] = s.ms
	}
	return summarise(ms)
}

// summarise gives the count, extremes, mean and nearest-rank percentiles
// of ms.
func summarise(ms []float64) ops.Latency {
	if len(ms) == 0 {
		return ops.Latency{}
	}
	slices.Sort(ms)
	sum := 0.0
	for _, v := range ms {
		sum += v
	}
	rank := func(q float64) float64 { return ms[max(int(math.Ceil(q*float64(len(ms))))-1, 0)] }
	return ops.Latency{Count: len(ms), MinMS: ms[0], MaxMS: ms[len(ms)-1], MeanMS: sum / float64(len(ms)),
		P50MS: rank(0.5), P90MS: rank(0.9), P99MS: rank(0.99)}
}

// outcomes counts the ends of attempts within a window.
type outcomes struct {
	events []outcome // oldest first
}

type outcome struct {
	at   time.Time
	kind string // completed, failed, dead_letter
}

func (o *outcomes) add(at time.Time, kind string) {
	o.events = append(bounded(o.events), outcome{at: at, kind: kind})
}

// since drops the outcomes before cut and counts the rest.
func (o *outcomes) since(cut time.Time) map[string]int {
	i, _ := slices.BinarySearchFunc(o.events, cut, func(e outcome, t time.Time) int { return e.at.Compare(t) })
	o.events = o.events[i:]
	counts := map[string]int{}
	for _, e := range o.events {
		counts[e.kind]++
	}
	return counts
}
