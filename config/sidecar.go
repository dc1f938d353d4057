package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/agentcom/agentcom/domain"
)

// Sidecar defaults.
const (
	DefaultProgressInterval = 30 * time.Second
	DefaultMaxTasks         = 1
)

// Limits on sidecar keys. Capabilities are checked by the hub's own rule
// (domain.ValidateCapabilities), so that the hub takes every hello.
const (
	MaxAgentIDLen    = domain.MaxAgentIDLength
	MaxCapabilities  = domain.MaxCapabilities
	MinProgressEvery = 10 * time.Millisecond
)

// Sidecar is the configuration of an agent's sidecar.
type Sidecar struct {
	// AgentID is the agent's id: one subject token ([A-Za-z0-9_-], at most
	// 128 characters). Required; it must match the agent's token.
	AgentID string `mapstructure:"agent_id"`
	// Token is the agent's token. Required, here or in TokenFile. Never
	// logged.
	Token string `mapstructure:"token"`
	// TokenFile is a file holding the agent's token (agentcom token create
	// --out writes one), so the token is not in argv for ps to show. It
	// excludes Token; validate reads it into Token.
	TokenFile string `mapstructure:"token_file"`
	// Hub is the hub's NATS URL. Defaults to nats://127.0.0.1:4222.
	Hub string `mapstructure:"hub"`
	// Name is a display name sent in hello; the hub may show it.
	Name string `mapstructure:"name"`
	// Capabilities are what the agent can do; tasks needing others are
	// not assigned to it.
	Capabilities []string `mapstructure:"capabilities"`
	// Exec is a shell command run for each task (exec mode).
	Exec string `mapstructure:"exec"`
	// Wake is a shell command template that wakes the agent for a task
	// (wake mode); the agent then writes ResultsDir/<task id>.json.
	Wake string `mapstructure:"wake"`
	// ResultsDir is where a woken agent writes its result files.
	ResultsDir string `mapstructure:"results_dir"`
	// StateDir holds the persisted current task. Defaults to
	// DefaultDataDir()/sidecar-<agent id>.
	StateDir string `mapstructure:"state_dir"`
	// InboxDir is where incoming messages are written, one JSON file
	// each, until acknowledged. Defaults to <state_dir>/inbox.
	InboxDir string `mapstructure:"inbox_dir"`
	// TaskTimeout ends a task's work after this long; 0 means no limit.
	TaskTimeout time.Duration `mapstructure:"task_timeout"`
	// ProgressInterval is how often progress is reported while working.
	// Defaults to 30s.
	ProgressInterval time.Duration `mapstructure:"progress_interval"`
	// MaxTasks is how many tasks the sidecar works on at once. Defaults to 1.
	MaxTasks int `mapstructure:"max_tasks"`
	// Log holds logging settings.
	Log Log `mapstructure:"log"`
	// TLS checks the hub's certificate (tls_ca, tls_cert, tls_key).
	TLS ClientTLS `mapstructure:",squash"`
}

var sidecarFlags = map[string]string{
	"tls_ca":            "tls-ca",
	"tls_cert":          "tls-cert",
	"tls_key":           "tls-key",
	"agent_id":          "agent-id",
	"token":             "token",
	"token_file":        "token-file",
	"hub":               "hub",
	"name":              "name",
	"capabilities":      "capability",
	"exec":              "exec",
	"wake":              "wake",
	"results_dir":       "results-dir",
	"state_dir":         "state-dir",
	"inbox_dir":         "inbox-dir",
	"task_timeout":      "task-timeout",
	"progress_interval": "progress-interval",
	"max_tasks":         "max-tasks",
	"log.level":         "log-level",
	"log.format":        "log-format",
}

// SidecarFlags defines the sidecar's flags on fs.
func SidecarFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file")
	fs.String("agent-id", "", "agent id, one subject token (env AGENTCOM_AGENT_ID)")
	fs.String("token", "", "the agent's token (env AGENTCOM_TOKEN; ps shows it: prefer --token-file)")
	fs.String("token-file", "", "file holding the agent's token (env AGENTCOM_TOKEN_FILE), as token create --out writes")
	fs.String("hub", DefaultHub, "hub NATS URL (env AGENTCOM_HUB)")
	fs.String("name", "", "display name sent to the hub")
	fs.StringArray("capability", nil, "a capability of the agent (repeatable)")
	fs.String("exec", "", "shell command run for each task (exec mode)")
	fs.String("wake", "", "shell command template that wakes the agent (wake mode): ${TASK_ID}, ${TASK_JSON}, ${TASK_DESCRIPTION}")
	fs.String("results-dir", "", "where a woken agent writes <task id>.json (wake mode)")
	fs.String("state-dir", "", "where the current task is persisted (default <data dir>/sidecar-<agent id>)")
	fs.String("inbox-dir", "", "where incoming messages wait, one JSON file each, until acknowledged (default <state dir>/inbox)")
	fs.Duration("task-timeout", 0, "end a task's work after this long (0: no limit)")
	fs.Duration("progress-interval", DefaultProgressInterval, "how often to report progress while working")
	fs.Int("max-tasks", DefaultMaxTasks, "tasks worked on at once")
	fs.String("log-level", DefaultLogLevel, "log level: debug, info, notice, warning, error")
	fs.String("log-format", DefaultLogFormat, "stdout log format: auto (console on a terminal, else json), json, console")
	tlsFlags(fs)
}

// LoadSidecar builds and validates the sidecar configuration. fs holds the
// flags from SidecarFlags.
func LoadSidecar(fs *pflag.FlagSet) (Sidecar, error) {
	v := newViper()
	v.SetDefault("hub", DefaultHub)
	v.SetDefault("progress_interval", DefaultProgressInterval)
	v.SetDefault("max_tasks", DefaultMaxTasks)
	setLogDefaults(v)
	for _, key := range []string{"agent_id", "token", "token_file", "name", "exec", "wake", "results_dir", "state_dir",
		"inbox_dir", "tls_ca", "tls_cert", "tls_key"} {
		v.SetDefault(key, "")
	}
	v.SetDefault("capabilities", []string{})
	v.SetDefault("task_timeout", time.Duration(0))
	if err := bind(v, fs, sidecarFlags); err != nil {
		return Sidecar{}, err
	}
	var s Sidecar
	if err := v.UnmarshalExact(&s); err != nil {
		return Sidecar{}, fmt.Errorf("load config: %w", err)
	}
	return s, s.validate()
}

// validate checks every key and fills defaults that depend on others.
func (s *Sidecar) validate() error {
	errs := []error{
		checkAgentID(s.AgentID),
		s.Log.validate(),
		s.checkMode(),
		checkCapabilities(s.Capabilities),
	}
	errs = append(errs, s.resolveToken())
	if strings.TrimSpace(s.Hub) == "" {
		errs = append(errs, errors.New("hub: must not be empty"))
	}
	if s.TaskTimeout < 0 {
		errs = append(errs, fmt.Errorf("task_timeout: %s must not be negative (0 means no limit)", s.TaskTimeout))
	}
	if s.ProgressInterval < MinProgressEvery {
		errs = append(errs, fmt.Errorf("progress_interval: %s must be at least %s", s.ProgressInterval, MinProgressEvery))
	}
	if s.MaxTasks < 1 {
		errs = append(errs, fmt.Errorf("max_tasks: %d must be at least 1", s.MaxTasks))
	}
	errs = append(errs, s.resolveDirs()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	return nil
}

func checkAgentID(id string) error {
	if id == "" {
		return errors.New("agent_id: required (env AGENTCOM_AGENT_ID)")
	}
	if err := domain.CheckAgentID(id); err != nil {
		return fmt.Errorf("agent_id: %w", err)
	}
	return nil
}

// resolveToken requires one of token and token_file, and reads the file.
func (s *Sidecar) resolveToken() error {
	switch {
	case s.Token != "" && s.TokenFile != "":
		return errors.New("token, token_file: set only one (token_file keeps the token out of the process list)")
	case s.TokenFile != "":
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return fmt.Errorf("token_file: read the agent's token: %w", err)
		}
		if s.Token = strings.TrimSpace(string(b)); s.Token == "" {
			return fmt.Errorf("token_file: %s is empty; want the agent's token (agentcom token create AGENT_ID --out FILE)", s.TokenFile)
		}
	case s.Token == "":
		return errors.New("token: required: --token-file FILE (env AGENTCOM_TOKEN_FILE) or --token (env AGENTCOM_TOKEN)")
	}
	return nil
}

// checkMode requires exactly one of exec and wake, and a results
// directory for wake.
func (s *Sidecar) checkMode() error {
	exec, wake := strings.TrimSpace(s.Exec) != "", strings.TrimSpace(s.Wake) != ""
	switch {
	case exec && wake:
		return errors.New("exec, wake: set only one (exec runs a command per task; wake wakes an agent that writes a result file)")
	case !exec && !wake:
		return errors.New("exec, wake: set one (exec runs a command per task; wake wakes an agent that writes a result file)")
	case wake && s.ResultsDir == "":
		return errors.New("results_dir: required with wake")
	}
	return nil
}

// checkCapabilities checks them as the hub checks a hello's.
func checkCapabilities(caps []string) error {
	v := &domain.ValidationError{}
	domain.ValidateCapabilities(v, "capabilities", caps)
	errs := make([]error, len(v.Fields))
	for i, f := range v.Fields {
		errs[i] = fmt.Errorf("%s: %s", f.Field, f.Detail)
	}
	return errors.Join(errs...)
}

// resolveDirs defaults state_dir and makes both directories absolute.
func (s *Sidecar) resolveDirs() []error {
	if s.StateDir == "" && checkAgentID(s.AgentID) == nil {
		s.StateDir = filepath.Join(DefaultDataDir(), "sidecar-"+s.AgentID)
	}
	var errs []error
	for _, d := range []struct {
		key string
		dir *string
	}{{"state_dir", &s.StateDir}, {"results_dir", &s.ResultsDir}, {"inbox_dir", &s.InboxDir}} {
		if *d.dir == "" {
			continue
		}
		abs, err := filepath.Abs(*d.dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.key, err))
			continue
		}
		*d.dir = abs
	}
	return errs
}
