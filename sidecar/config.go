package sidecar

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentcom/agentcom/config"
)

// Defaults of the tuning knobs that the config file does not expose.
const (
	DefaultHeartbeat        = 30 * time.Second
	DefaultRequestTimeout   = 10 * time.Second
	DefaultRetryBase        = time.Second
	DefaultRetryMax         = 60 * time.Second
	DefaultWakeTimeout      = 60 * time.Second
	DefaultResultPoll       = 250 * time.Millisecond
	DefaultKillGrace        = 5 * time.Second
	DefaultProgressInterval = config.DefaultProgressInterval
)

// DefaultWakeRetryDelays are the waits between the four wake attempts.
var DefaultWakeRetryDelays = []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second}

// Config is what a Sidecar needs. The first block mirrors config.Sidecar;
// the rest are tuning knobs, zero meaning the default, that tests shorten.
type Config struct {
	AgentID      string
	Token        string
	Hub          string
	Name         string
	Capabilities []string
	Exec         string
	Wake         string
	ResultsDir   string
	StateDir     string
	// InboxDir holds the unacknowledged messages; <StateDir>/inbox when
	// left out.
	InboxDir         string
	TaskTimeout      time.Duration
	ProgressInterval time.Duration
	MaxTasks         int
	TLS              config.ClientTLS

	// RequestTimeout bounds each request to the hub.
	RequestTimeout time.Duration
	// RetryBase and RetryMax shape every backoff: reconnects, hello
	// retries and report retries wait RetryBase, doubling up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// WakeTimeout bounds one run of the wake command.
	WakeTimeout time.Duration
	// WakeRetryDelays are the waits before each retry of the wake command;
	// there are len(WakeRetryDelays)+1 attempts.
	WakeRetryDelays []time.Duration
	// ResultPoll is how often wake mode looks for the result file.
	ResultPoll time.Duration
	// KillGrace is how long a process group has between SIGTERM and
	// SIGKILL when its work is stopped.
	KillGrace time.Duration
}

// FromConfig turns the loaded configuration into a Config with default
// tuning.
func FromConfig(c config.Sidecar) Config {
	return Config{
		AgentID: c.AgentID, Token: c.Token, Hub: c.Hub, Name: c.Name, Capabilities: c.Capabilities,
		Exec: c.Exec, Wake: c.Wake, ResultsDir: c.ResultsDir, StateDir: c.StateDir, InboxDir: c.InboxDir,
		TaskTimeout: c.TaskTimeout, ProgressInterval: c.ProgressInterval, MaxTasks: c.MaxTasks, TLS: c.TLS,
	}
}

// withDefaults fills every zero knob.
func (c Config) withDefaults() Config {
	if c.Hub == "" {
		c.Hub = config.DefaultHub
	}
	if c.InboxDir == "" && c.StateDir != "" {
		c.InboxDir = filepath.Join(c.StateDir, "inbox")
	}
	if c.Capabilities == nil {
		c.Capabilities = []string{}
	}
	setDur(&c.ProgressInterval, DefaultProgressInterval)
	setDur(&c.RequestTimeout, DefaultRequestTimeout)
	setDur(&c.RetryBase, DefaultRetryBase)
	setDur(&c.RetryMax, DefaultRetryMax)
	setDur(&c.WakeTimeout, DefaultWakeTimeout)
	setDur(&c.ResultPoll, DefaultResultPoll)
	setDur(&c.KillGrace, DefaultKillGrace)
	if c.WakeRetryDelays == nil {
		c.WakeRetryDelays = DefaultWakeRetryDelays
	}
	if c.MaxTasks < 1 {
		c.MaxTasks = config.DefaultMaxTasks
	}
	return c
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// check refuses a Config the sidecar cannot run with. config.LoadSidecar
// checks the same and more, naming each key; this guards direct callers.
func (c Config) check() error {
	var errs []error
	if c.AgentID == "" || strings.ContainsAny(c.AgentID, ".*> \t") {
		errs = append(errs, fmt.Errorf("agent_id: %q is not one subject token", c.AgentID))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token: required"))
	}
	if (c.Exec == "") == (c.Wake == "") {
		errs = append(errs, errors.New("exec, wake: set exactly one"))
	}
	if c.Wake != "" && c.ResultsDir == "" {
		errs = append(errs, errors.New("results_dir: required with wake"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid sidecar config: %w", err)
	}
	return nil
}
