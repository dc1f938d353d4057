package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Defaults and limits of retry backoff.
const (
	DefaultRetryBase = time.Second
	DefaultRetryMax  = 10 * time.Minute
	MaxRetryDelay    = 7 * 24 * time.Hour
	// RetryJitter is the share of a delay that jitter may take away, so
	// tasks that failed together do not come back together.
	RetryJitter = 0.2
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("1s", "10m0s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("decode duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Backoff spaces the attempts of a failing task: the wait after the n-th
// failure is Base doubled n-1 times, at most Max, less up to RetryJitter
// of it at random.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// DefaultBackoff is the backoff of tasks.retry_base and tasks.retry_max
// when they are not set.
var DefaultBackoff = Backoff{Base: DefaultRetryBase, Max: DefaultRetryMax}

// Delay is the wait after the failure that brought the retry count to
// count (1 for the first failure). jitter is a random number in [0, 1).
func (b Backoff) Delay(count int, jitter float64) time.Duration {
	limit := max(b.Max, b.Base)
	d := b.Base
	for i := 1; i < count && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter = min(max(jitter, 0), 1)
	return d - time.Duration(float64(d)*RetryJitter*jitter)
}

// For is the backoff of task t: its own retry_base and retry_max where
// the submit set them, b's otherwise.
func (b Backoff) For(t *Task) Backoff {
	if t.Extras == nil {
		return b
	}
	if t.RetryBase > 0 {
		b.Base = time.Duration(t.RetryBase)
	}
	if t.RetryMax > 0 {
		b.Max = time.Duration(t.RetryMax)
	}
	return b
}

// validateBackoff checks a submit's retry_base and retry_max overrides.
func validateBackoff(v *ValidationError, base, limit *time.Duration) {
	for _, f := range []struct {
		name string
		d    *time.Duration
	}{{"retry_base", base}, {"retry_max", limit}} {
		if f.d != nil && (*f.d <= 0 || *f.d > MaxRetryDelay) {
			v.Add(f.name, "out_of_range", fmt.Sprintf("%s must be a positive duration of at most %s", f.name, MaxRetryDelay))
		}
	}
	if base != nil && limit != nil && *base > *limit {
		v.Add("retry_max", "invalid", "retry_max must not be shorter than retry_base")
	}
}
