package metrics

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentcom/agentcom/protocol/ops"
)

// point is one minute's sample: the queue depth and the error log lines
// written so far.
type point struct {
	at         time.Time
	depth      int
	errorLines uint64
}

// SampleEvery is how often the queue depth is sampled for the hour's trend.
const SampleEvery = time.Minute

// Sample records the queue depth now, for the hour's points; Run calls it
// every SampleEvery, tests with their own clock.
func (m *Metrics) Sample(ctx context.Context) {
	st := m.p.State(ctx)
	p := point{at: m.p.Now(), depth: sum(st.QueuedByPriority), errorLines: m.p.LogLines()["error"]}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.points = append(m.points, p)
	cut := p.at.Add(-time.Hour)
	for len(m.points) > 0 && !m.points[0].at.After(cut) {
		m.points = m.points[1:]
	}
}

// Run samples every SampleEvery until ctx ends.
func (m *Metrics) Run(ctx context.Context) {
	m.Sample(ctx)
	t := time.NewTicker(SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sample(ctx)
		}
	}
}

// Snapshot is the JSON snapshot of GET /api/metrics.
func (m *Metrics) Snapshot(ctx context.Context) ops.MetricsSnapshot {
	st := m.p.State(ctx)
	now := m.p.Now()
	out := ops.MetricsSnapshot{Time: now.UTC(), WindowS: Window.Seconds(), StoreHealth: st.Store,
		AgentUtilization: utilization(st.Agents)}
	errorsNow := m.p.LogLines()["error"]
	m.mu.Lock()
	defer m.mu.Unlock()
	out.QueueWait.Cumulative, out.TaskLatency.Cumulative = cumulative(m.wait), cumulative(m.run)
	cut := now.Add(-Window)
	out.QueueWait.Window, out.TaskLatency.Window = m.wait.window.since(cut), m.run.window.since(cut)
	out.ErrorRates.Window = rates(m.ends.since(cut))
	out.ErrorRates.Window.ErrorLogLines = int(errorsNow - m.errorLinesAt(cut, errorsNow))
	out.ErrorRates.Cumulative = rates(m.total)
	out.ErrorRates.Cumulative.ErrorLogLines = int(errorsNow)
	out.QueueDepth = m.depthLocked(st.QueuedByPriority)
	return out
}

// errorLinesAt is the error lines counted at the first point at or after
// cut (now's count when there is none).
func (m *Metrics) errorLinesAt(cut time.Time, now uint64) uint64 {
	for _, p := range m.points {
		if !p.at.Before(cut) {
			return p.errorLines
		}
	}
	return now
}

// depthLocked is the queue depth now and over the hour's points.
func (m *Metrics) depthLocked(byPriority map[string]int) ops.QueueDepth {
	q := ops.QueueDepth{Current: sum(byPriority), ByPriority: byPriority, Points: []ops.DepthPoint{}}
	total := 0
	for _, p := range m.points {
		q.Points = append(q.Points, ops.DepthPoint{Time: p.at.UTC(), Depth: p.depth})
		q.Max1h, total = max(q.Max1h, p.depth), total+p.depth
	}
	if len(m.points) > 0 {
		q.Avg1h = float64(total) / float64(len(m.points))
	}
	q.Trend = trend(m.points)
	return q
}

// trend is the sign of the least-squares slope of the points, in tasks a
// minute: growing or shrinking past half a task a minute, else steady.
func trend(points []point) string {
	n := float64(len(points))
	if n < 2 {
		return "steady"
	}
	var sx, sy, sxx, sxy float64
	for _, p := range points {
		x, y := p.at.Sub(points[0].at).Minutes(), float64(p.depth)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return "steady"
	}
	switch slope := (n*sxy - sx*sy) / den; {
	case slope > 0.5:
		return "growing"
	case slope < -0.5:
		return "shrinking"
	}
	return "steady"
}

func rates(counts map[string]int) ops.ErrorRates {
	r := ops.ErrorRates{Completed: counts["completed"], Failed: counts["failed"], DeadLetter: counts["dead_letter"]}
	r.Total = r.Completed + r.Failed
	if r.Total > 0 {
		r.FailureRatePct = 100 * float64(r.Failed) / float64(r.Total)
	}
	return r
}

func utilization(agents []ops.AgentUse) ops.AgentUtilization {
	u := ops.AgentUtilization{PerAgent: agents}
	u.System.Total = len(agents)
	for _, a := range agents {
		if a.State == "offline" {
			continue
		}
		u.System.Online++
		if a.Tasks == 0 {
			u.System.Idle++
		} else {
			u.System.Working++
		}
		u.System.Slots, u.System.BusySlots = u.System.Slots+a.Slots, u.System.BusySlots+a.Tasks
	}
	if u.System.Slots > 0 {
		u.System.UtilizationPct = 100 * float64(u.System.BusySlots) / float64(u.System.Slots)
	}
	return u
}

// cumulative summarises a histogram since start: count and mean exact,
// percentiles interpolated within their buckets as Prometheus's
// histogram_quantile does.
func cumulative(t *timing) ops.Latency {
	var count uint64
	var total float64
	buckets := make([]float64, len(durationBuckets)) // cumulative counts by bound
	ch := make(chan prometheus.Metric, 16)
	go func() { t.hist.Collect(ch); close(ch) }()
	for metric := range ch {
		var d dto.Metric
		if metric.Write(&d) != nil || d.Histogram == nil {
			continue
		}
		count, total = count+d.Histogram.GetSampleCount(), total+d.Histogram.GetSampleSum()
		for i, b := range d.Histogram.GetBucket() {
			buckets[i] += float64(b.GetCumulativeCount())
		}
	}
	if count == 0 {
		return ops.Latency{}
	}
	q := func(p float64) float64 { return 1000 * quantile(p, float64(count), buckets, t.most/1000) }
	return ops.Latency{Count: int(count), MinMS: t.least, MaxMS: t.most, MeanMS: 1000 * total / float64(count),
		P50MS: q(0.5), P90MS: q(0.9), P99MS: q(0.99)}
}

// quantile interpolates the p-quantile, in seconds, from cumulative bucket
// counts; past the last bound it is the greatest value seen.
func quantile(p, count float64, cum []float64, greatest float64) float64 {
	rank := p * count
	lower, below := 0.0, 0.0
	for i, c := range cum {
		if c >= rank {
			if c == below {
				return durationBuckets[i]
			}
			return lower + (durationBuckets[i]-lower)*(rank-below)/(c-below)
		}
		lower, below = durationBuckets[i], c
	}
	return math.Max(greatest, lower)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
