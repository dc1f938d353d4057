package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/viper"
)

// Alerts are the thresholds of the alert rules (docs/metrics.md, alerts),
// as the original's Phase 14 defaults.
type Alerts struct {
	// CheckInterval is how often the rules are evaluated. Defaults to 30s.
	CheckInterval time.Duration `mapstructure:"check_interval"`
	// QueueGrowingChecks fires queue_growing after the queue grew at this
	// many checks in a row (and clears it after as many without growth).
	// Defaults to 3.
	QueueGrowingChecks int `mapstructure:"queue_growing_checks"`
	// FailureRatePct fires high_failure_rate when more than this share of
	// the attempts that ended in the last 5 minutes failed, once at least
	// FailureMinAttempts ended. Defaults to 50 and 5.
	FailureRatePct     float64 `mapstructure:"failure_rate_pct"`
	FailureMinAttempts int     `mapstructure:"failure_min_attempts"`
	// StuckAfter fires stuck_tasks when an assigned or working task has had
	// no event for this long. Defaults to 5m.
	StuckAfter time.Duration `mapstructure:"stuck_after"`
	// ErrorLinesPerHour fires high_error_rate when the hub wrote more error
	// log lines than this in the last hour. Defaults to 10.
	ErrorLinesPerHour int `mapstructure:"error_lines_per_hour"`
	// Cooldown is the least time between two firings of one warning rule;
	// critical rules fire whenever their condition returns. Defaults to 5m.
	Cooldown time.Duration `mapstructure:"cooldown"`
}

// AlertDefaults are the defaults of the alerts keys.
var AlertDefaults = Alerts{CheckInterval: 30 * time.Second, QueueGrowingChecks: 3, FailureRatePct: 50,
	FailureMinAttempts: 5, StuckAfter: 5 * time.Minute, ErrorLinesPerHour: 10, Cooldown: 5 * time.Minute}

// setAlertDefaults sets the alerts keys' defaults.
func setAlertDefaults(v *viper.Viper) {
	a := AlertDefaults
	for key, d := range a.durations() {
		v.SetDefault(key, d)
	}
	v.SetDefault("alerts.queue_growing_checks", a.QueueGrowingChecks)
	v.SetDefault("alerts.failure_rate_pct", a.FailureRatePct)
	v.SetDefault("alerts.failure_min_attempts", a.FailureMinAttempts)
	v.SetDefault("alerts.error_lines_per_hour", a.ErrorLinesPerHour)
}

// positive refuses every duration of durations that is not above zero,
// naming its key and an example value.
func positive(durations map[string]time.Duration, example string) []error {
	var errs []error
	for key, d := range durations {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration such as %s", key, example))
		}
	}
	return errs
}

func (a Alerts) durations() map[string]time.Duration {
	return map[string]time.Duration{"alerts.check_interval": a.CheckInterval, "alerts.stuck_after": a.StuckAfter,
		"alerts.cooldown": a.Cooldown}
}

func (a Alerts) validate() error {
	errs := positive(a.durations(), "30s")
	if a.QueueGrowingChecks < 1 || a.FailureMinAttempts < 1 || a.ErrorLinesPerHour < 0 {
		errs = append(errs, fmt.Errorf("alerts.queue_growing_checks %d, alerts.failure_min_attempts %d: at least 1; "+
			"alerts.error_lines_per_hour %d: not negative", a.QueueGrowingChecks, a.FailureMinAttempts, a.ErrorLinesPerHour))
	}
	if a.FailureRatePct < 0 || a.FailureRatePct > 100 {
		errs = append(errs, fmt.Errorf("alerts.failure_rate_pct: %g must be between 0 and 100", a.FailureRatePct))
	}
	return errors.Join(errs...)
}
