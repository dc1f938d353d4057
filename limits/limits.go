// Package limits holds the hub's rate limits per caller: three tiers of
// operations (light, normal, heavy), each a token bucket per caller and
// tier, refilled evenly to its limit a minute, with overrides per name
// and an exempt list that an operator changes while the hub runs. It
// knows nothing of transports or storage; the clock is injected.
package limits

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Tier is how heavy an operation is.
type Tier string

// The tiers, lightest first.
const (
	Light  Tier = "light"
	Normal Tier = "normal"
	Heavy  Tier = "heavy"
)

// Limits are requests a minute per tier; 0 means no limit.
type Limits struct {
	Light  int `json:"light"`
	Normal int `json:"normal"`
	Heavy  int `json:"heavy"`
}

// Defaults are the original's: 120, 60 and 10 a minute.
var Defaults = Limits{Light: 120, Normal: 60, Heavy: 10}

// Of is the limit of a tier.
func (l Limits) Of(t Tier) int {
	switch t {
	case Light:
		return l.Light
	case Normal:
		return l.Normal
	case Heavy:
		return l.Heavy
	}
	return 0
}

// Override replaces some of the default limits for one name; a tier left
// out keeps the default.
type Override struct {
	Light  *int `json:"light,omitempty"`
	Normal *int `json:"normal,omitempty"`
	Heavy  *int `json:"heavy,omitempty"`
}

// Check says what is wrong with an override: a limit below 1 (exempt a
// name instead), or none given.
func (o Override) Check() error {
	if o.Light == nil && o.Normal == nil && o.Heavy == nil {
		return fmt.Errorf("give at least one of light, normal and heavy")
	}
	for tier, v := range map[Tier]*int{Light: o.Light, Normal: o.Normal, Heavy: o.Heavy} {
		if v != nil && *v < 1 {
			return fmt.Errorf("%s: %d a minute; a limit is at least 1 (exempt the name to lift every limit)", tier, *v)
		}
	}
	return nil
}

// over applies o to base.
func (o Override) over(base Limits) Limits {
	for _, f := range []struct {
		v   *int
		dst *int
	}{{o.Light, &base.Light}, {o.Normal, &base.Normal}, {o.Heavy, &base.Heavy}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return base
}

// Decision is Allow's answer. When a caller is refused, RetryAfter is
// when one more request would pass; Report, when non-zero, is how many
// refusals of this caller and tier to report now (at most one report a
// second per caller and tier, so a flood makes few).
type Decision struct {
	OK         bool
	RetryAfter time.Duration
	Limit      int
	Report     int
}

// reportEvery spaces the refusal reports of one caller and tier.
const reportEvery = time.Second

type key struct {
	name string
	tier Tier
}

type bucket struct {
	lim        *rate.Limiter
	limit      int
	refused    int
	lastReport time.Time
}

// Limiter is every caller's buckets. Safe for concurrent use.
type Limiter struct {
	defaults Limits
	now      func() time.Time

	mu        sync.Mutex
	buckets   map[key]*bucket
	overrides map[string]Override
	exempt    map[string]bool
}

// New returns a limiter with defaults on the clock now (time.Now when nil).
func New(defaults Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{defaults: defaults, now: now, buckets: map[key]*bucket{},
		overrides: map[string]Override{}, exempt: map[string]bool{}}
}

// Allow spends one request of name's budget in tier.
func (l *Limiter) Allow(name string, tier Tier) Decision {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.limitsOf(name).Of(tier)
	if l.exempt[name] || limit <= 0 {
		return Decision{OK: true}
	}
	b := l.buckets[key{name, tier}]
	if b == nil || b.limit != limit {
		// Full at first: a caller may spend a minute's budget at once.
		b = &bucket{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(limit)), limit), limit: limit}
		l.buckets[key{name, tier}] = b
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		b.refused++
		dec := Decision{RetryAfter: d, Limit: limit}
		if now.Sub(b.lastReport) >= reportEvery {
			dec.Report, b.refused, b.lastReport = b.refused, 0, now
		}
		return dec
	}
	return Decision{OK: true, Limit: limit}
}

// limitsOf is name's limits. Lock held.
func (l *Limiter) limitsOf(name string) Limits {
	if o, ok := l.overrides[name]; ok {
		return o.over(l.defaults)
	}
	return l.defaults
}

// SetOverride replaces name's override; its buckets start afresh.
func (l *Limiter) SetOverride(name string, o Override) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.overrides[name] = o
	l.forget(name)
}

// ClearOverride removes name's override, and reports whether it had one.
func (l *Limiter) ClearOverride(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, had := l.overrides[name]
	delete(l.overrides, name)
	l.forget(name)
	return had
}

// SetExempt puts name on the exempt list or takes it off, and reports
// whether that changed anything.
func (l *Limiter) SetExempt(name string, on bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := l.exempt[name] != on
	if on {
		l.exempt[name] = true
	} else {
		delete(l.exempt, name)
	}
	l.forget(name)
	return changed
}

// forget drops name's buckets. Lock held.
func (l *Limiter) forget(name string) {
	for _, t := range []Tier{Light, Normal, Heavy} {
		delete(l.buckets, key{name, t})
	}
}

// State is what an operator sees: the defaults, each override with the
// limits it makes, and the exempt names.
type State struct {
	Defaults  Limits            `json:"defaults"`
	Overrides map[string]Limits `json:"overrides"`
	Exempt    []string          `json:"exempt"`
}

// State returns the limits in force.
func (l *Limiter) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := State{Defaults: l.defaults, Overrides: map[string]Limits{}, Exempt: []string{}}
	for name, o := range l.overrides {
		s.Overrides[name] = o.over(l.defaults)
	}
	for name := range l.exempt {
		s.Exempt = append(s.Exempt, name)
	}
	slices.Sort(s.Exempt)
	return s
}
