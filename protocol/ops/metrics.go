package ops

import (
	"encoding/json"
	"time"
)

// MetricsSnapshot answers GET /api/metrics: the original's JSON snapshot
// of the operators' numbers (docs/metrics.md).
type MetricsSnapshot struct {
	Time time.Time `json:"time"`
	// WindowS is the span, in seconds, of every "window" figure.
	WindowS          float64           `json:"window_s"`
	QueueDepth       QueueDepth        `json:"queue_depth"`
	QueueWait        LatencyWindow     `json:"queue_wait"`
	TaskLatency      LatencyWindow     `json:"task_latency"`
	AgentUtilization AgentUtilization  `json:"agent_utilization"`
	ErrorRates       ErrorRatesWindow  `json:"error_rates"`
	StoreHealth      StoreHealthDigest `json:"store_health"`
}

// QueueDepth is the queued tasks now, and a point a minute over the last hour.
type QueueDepth struct {
	Current    int            `json:"current"`
	ByPriority map[string]int `json:"by_priority"`
	Max1h      int            `json:"max_1h"`
	Avg1h      float64        `json:"avg_1h"`
	// Trend is growing, shrinking or steady: the slope of the hour's points.
	Trend  string       `json:"trend"`
	Points []DepthPoint `json:"points"`
}

// DepthPoint is the queue depth at a minute.
type DepthPoint struct {
	Time  time.Time `json:"time"`
	Depth int       `json:"depth"`
}

// LatencyWindow is a duration's summary over the window (exact, from the
// samples) and since the hub started (from the histogram's buckets).
type LatencyWindow struct {
	Window     Latency `json:"window"`
	Cumulative Latency `json:"cumulative"`
}

// Latency summarises durations, in milliseconds.
type Latency struct {
	Count  int     `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
}

// AgentUtilization is how busy the agents are: the system's counts and
// each agent's.
type AgentUtilization struct {
	System   Utilization `json:"system"`
	PerAgent []AgentUse  `json:"per_agent"`
}

// Utilization counts agents by what they do, and the slots in use of the
// online ones.
type Utilization struct {
	Total          int     `json:"total"`
	Online         int     `json:"online"`
	Idle           int     `json:"idle"`
	Working        int     `json:"working"`
	Slots          int     `json:"slots"`
	BusySlots      int     `json:"busy_slots"`
	UtilizationPct float64 `json:"utilization_pct"`
}

// AgentUse is one agent's state and slots.
type AgentUse struct {
	AgentID string `json:"agent_id"`
	State   string `json:"state"`
	Tasks   int    `json:"tasks"`
	Slots   int    `json:"slots"`
}

// ErrorRatesWindow are the ends of attempts over the window and since start.
type ErrorRatesWindow struct {
	Window     ErrorRates `json:"window"`
	Cumulative ErrorRates `json:"cumulative"`
}

// ErrorRates count ended attempts: Total is completed plus failed;
// FailureRatePct is failed over total.
type ErrorRates struct {
	Total          int     `json:"total"`
	Completed      int     `json:"completed"`
	Failed         int     `json:"failed"`
	DeadLetter     int     `json:"dead_letter"`
	FailureRatePct float64 `json:"failure_rate_pct"`
	ErrorLogLines  int     `json:"error_log_lines"`
}

// StoreHealthDigest is the store's health in brief.
type StoreHealthDigest struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
	Events  uint64   `json:"events"`
	Bytes   uint64   `json:"bytes"`
	LastSeq uint64   `json:"last_seq"`
	// Lag is how many events the projections have still to apply.
	Lag uint64 `json:"lag"`
}

// Text is an answer that is not JSON, such as the Prometheus exposition:
// over HTTP it is the body as is, with its content type; over NATS the
// reply is the text as one JSON string.
type Text struct {
	ContentType string
	Body        string
}

// MarshalJSON writes the text as a JSON string.
func (t Text) MarshalJSON() ([]byte, error) { return json.Marshal(t.Body) }

// TextFormat is the Prometheus text exposition format's content type.
const TextFormat = "text/plain; version=0.0.4; charset=utf-8"

// Alerts answers GET /api/alerts: every rule's alert.
type Alerts struct {
	Alerts []Alert `json:"alerts"`
}

// Alert is one rule's state: inactive, active, acknowledged or cleared,
// with the value its last check saw against the threshold.
type Alert struct {
	Rule           string     `json:"rule"`
	Severity       string     `json:"severity"`
	State          string     `json:"state"`
	Message        string     `json:"message,omitempty"`
	Value          float64    `json:"value"`
	Threshold      float64    `json:"threshold"`
	FiredAt        *time.Time `json:"fired_at,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	ClearedAt      *time.Time `json:"cleared_at,omitempty"`
}

// LogTailQuery asks for the last lines of the hub's log file.
type LogTailQuery struct {
	// Lines is how many: 1 to 1000, 100 when left out.
	Lines int `json:"lines,omitempty"`
}

// LogTail is the last lines of the log file, oldest first, each the JSON
// object the file holds.
type LogTail struct {
	File  string            `json:"file"`
	Lines []json.RawMessage `json:"lines"`
}
