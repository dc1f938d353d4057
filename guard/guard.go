package guard

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config are the limits. Zero Rate means no request budget; zero
// Threshold means violations never disconnect.
type Config struct {
	// Rate is the requests per second an agent may make, on average.
	Rate float64
	// Burst is how many requests an agent may make at once.
	Burst int
	// Threshold is how many violations within Window disconnect an agent.
	Threshold int
	// Window is the span the threshold counts over.
	Window time.Duration
	// Cooldown is how long a disconnected agent is refused the first
	// time; twice that the second time, ten times from the third on.
	Cooldown time.Duration
	// LogEvery is the interval of the log summary: at most one report
	// per agent per interval, besides disconnects.
	LogEvery time.Duration
}

// Violation is one thing an agent did wrong.
type Violation struct {
	Kind    string // one of the Kind constants
	Op      string // the request verb, or publish / subscribe
	Subject string
}

// The kinds of violation.
const (
	KindRateLimited     = "rate_limited"
	KindTooLarge        = "too_large"
	KindMalformed       = "malformed"
	KindUnknownVerb     = "unknown_verb"
	KindForeignReply    = "foreign_reply"
	KindForbiddenHeader = "forbidden_header"
	KindPermission      = "permission"
)

// Report is what to log (and emit) about one agent: the violations since
// its last report.
type Report struct {
	AgentID string
	// Count is how many violations the report covers; Kinds splits it.
	Count int
	Kinds map[string]int
	// Last is the latest of them.
	Last Violation
	// Disconnect says to close the agent's connections; it is refused
	// until RefusedUntil.
	Disconnect   bool
	Cooldown     time.Duration
	RefusedUntil time.Time
}

// forgetAfter is how long an agent with nothing pending and no refusal
// running is remembered (its bucket and its disconnect count).
const forgetAfter = 10 * time.Minute

// Guard holds every agent's bucket and counts. Safe for concurrent use.
type Guard struct {
	cfg Config
	now func() time.Time

	mu     sync.Mutex
	agents map[string]*agent
}

type agent struct {
	bucket       *rate.Limiter
	windowStart  time.Time
	inWindow     int
	lastReport   time.Time
	pending      Report
	refusedUntil time.Time
	disconnects  int
	seen         time.Time
}

// New returns a guard on the clock now (time.Now when nil).
func New(cfg Config, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{cfg: cfg, now: now, agents: map[string]*agent{}}
}

// get returns the agent's state, creating it. Call with g.mu held.
func (g *Guard) get(id string, now time.Time) *agent {
	a, ok := g.agents[id]
	if !ok {
		a = &agent{}
		if g.cfg.Rate > 0 {
			a.bucket = rate.NewLimiter(rate.Limit(g.cfg.Rate), max(g.cfg.Burst, 1))
		}
		g.agents[id] = a
	}
	a.seen = now
	return a
}

// Allow spends one request of the agent's budget; false means over
// budget (the caller refuses the request and records a violation).
func (g *Guard) Allow(agentID string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.get(agentID, now)
	return a.bucket == nil || a.bucket.AllowN(now, 1)
}

// Refused reports whether the agent is in its cooldown, and until when.
func (g *Guard) Refused(agentID string) (time.Time, bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.agents[agentID]
	if !ok || !now.Before(a.refusedUntil) {
		return time.Time{}, false
	}
	return a.refusedUntil, true
}

// Record counts one violation. It returns a report to log now when this
// is the agent's first violation in the log interval, or when it crosses
// the threshold (Disconnect set); otherwise the violation waits in the
// agent's pending count for Flush.
func (g *Guard) Record(agentID string, v Violation) (Report, bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.get(agentID, now)
	a.add(agentID, v)
	if now.Sub(a.windowStart) >= g.cfg.Window {
		a.windowStart, a.inWindow = now, 0
	}
	a.inWindow++
	if g.cfg.Threshold > 0 && a.inWindow >= g.cfg.Threshold && !now.Before(a.refusedUntil) {
		a.disconnects++
		a.inWindow = 0
		a.pending.Disconnect, a.pending.Cooldown = true, g.cooldown(a.disconnects)
		a.refusedUntil = now.Add(a.pending.Cooldown)
		a.pending.RefusedUntil = a.refusedUntil
		return a.report(now), true
	}
	if a.lastReport.IsZero() || now.Sub(a.lastReport) >= g.cfg.LogEvery {
		return a.report(now), true
	}
	return Report{}, false
}

// cooldown is the refusal after the nth disconnect.
func (g *Guard) cooldown(n int) time.Duration {
	switch n {
	case 1:
		return g.cfg.Cooldown
	case 2:
		return 2 * g.cfg.Cooldown
	}
	return 10 * g.cfg.Cooldown
}

// Flush returns the pending reports whose log interval has ended, and
// forgets agents long quiet. Call it about every LogEvery.
func (g *Guard) Flush() []Report {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Report
	for id, a := range g.agents {
		switch {
		case a.pending.Count > 0 && now.Sub(a.lastReport) >= g.cfg.LogEvery:
			out = append(out, a.report(now))
		case a.pending.Count == 0 && now.Sub(a.seen) >= forgetAfter && !now.Before(a.refusedUntil):
			delete(g.agents, id)
		}
	}
	return out
}

func (a *agent) add(id string, v Violation) {
	if a.pending.Kinds == nil {
		a.pending = Report{AgentID: id, Kinds: map[string]int{}}
	}
	a.pending.Count++
	a.pending.Kinds[v.Kind]++
	a.pending.Last = v
}

// report hands out the pending report and starts a new interval.
func (a *agent) report(now time.Time) Report {
	r := a.pending
	a.pending, a.lastReport = Report{}, now
	return r
}
