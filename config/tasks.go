package config

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/domain"
)

// Tasks holds the task settings.
type Tasks struct {
	// RetryBase is the wait after a task's first failure; it doubles with
	// each further failure up to RetryMax. Defaults to 1s and 10m. A
	// submit can set its own (retry_base, retry_max).
	RetryBase time.Duration `mapstructure:"retry_base"`
	RetryMax  time.Duration `mapstructure:"retry_max"`
	// IdempotencyWindow is how long a submit's idempotency key answers
	// its first task (default 24h).
	IdempotencyWindow time.Duration `mapstructure:"idempotency_window"`
}

// DefaultIdempotencyWindow is tasks.idempotency_window's default.
const DefaultIdempotencyWindow = 24 * time.Hour

// Window is the idempotency window, the default where unset.
func (t Tasks) Window() time.Duration { return cmp.Or(t.IdempotencyWindow, DefaultIdempotencyWindow) }

// TaskDefaults are the defaults of the tasks.* keys.
var TaskDefaults = Tasks{RetryBase: domain.DefaultRetryBase, RetryMax: domain.DefaultRetryMax,
	IdempotencyWindow: DefaultIdempotencyWindow}

// Backoff is the retry policy the keys describe.
func (t Tasks) Backoff() domain.Backoff { return domain.Backoff{Base: t.RetryBase, Max: t.RetryMax} }

func (t Tasks) durations() map[string]time.Duration {
	return map[string]time.Duration{"tasks.retry_base": t.RetryBase, "tasks.retry_max": t.RetryMax}
}

func (t Tasks) validate() error {
	var errs []error
	for key, d := range t.durations() {
		if d <= 0 || d > domain.MaxRetryDelay {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration of at most %s, such as 1s", key, domain.MaxRetryDelay))
		}
	}
	if t.IdempotencyWindow < 0 || t.IdempotencyWindow > 30*24*time.Hour {
		errs = append(errs, errors.New("tasks.idempotency_window: must be a positive duration of at most 720h, such as 24h"))
	}
	if t.RetryBase > t.RetryMax {
		errs = append(errs, errors.New("tasks.retry_max: must not be shorter than tasks.retry_base"))
	}
	return errors.Join(errs...)
}
