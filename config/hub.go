package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// Hub is the hub's configuration.
type Hub struct {
	// NATS.Listen is where the embedded NATS server takes clients.
	// Defaults to 127.0.0.1:4222; port 0 picks a free port.
	NATS NATSListener `mapstructure:"nats"`
	// HTTP.Listen is where the HTTP API listens. Defaults to 127.0.0.1:4000.
	HTTP HTTPListener `mapstructure:"http"`
	// DataDir holds the JetStream store and admin.token. Defaults to
	// DefaultDataDir().
	DataDir string `mapstructure:"data_dir"`
	// Store holds durability settings.
	Store Store `mapstructure:"store"`
	// Log holds logging settings.
	Log Log `mapstructure:"log"`
	// Agents holds the timings of agents and leases.
	Agents Agents `mapstructure:"agents"`
	// Telemetry holds the telemetry settings.
	Telemetry Telemetry `mapstructure:"telemetry"`
	// Tasks holds the task settings (retry backoff).
	Tasks Tasks `mapstructure:"tasks"`
	// RateLimits are each token's requests a minute per tier of
	// operation (docs/protocol.md, rate limits).
	RateLimits RateLimits `mapstructure:"rate_limits"`
	// Alerts are the alert rules' thresholds (docs/metrics.md, alerts).
	Alerts Alerts `mapstructure:"alerts"`
	// Messages bound the messages kept and the mailboxes.
	Messages Messages `mapstructure:"messages"`
}

// RateLimits are requests a minute per tier; 0 lifts a tier's limit.
type RateLimits struct {
	Light  int `mapstructure:"light"`
	Normal int `mapstructure:"normal"`
	Heavy  int `mapstructure:"heavy"`
}

// RateLimitDefaults are the original's tiers: 120, 60 and 10 a minute.
var RateLimitDefaults = RateLimits{Light: 120, Normal: 60, Heavy: 10}

func (r RateLimits) validate() error {
	if r.Light < 0 || r.Normal < 0 || r.Heavy < 0 {
		return fmt.Errorf("rate_limits: light %d, normal %d, heavy %d: none may be negative (0 lifts the limit)",
			r.Light, r.Normal, r.Heavy)
	}
	return nil
}

// Telemetry is the telemetry setting.
type Telemetry struct {
	// Enabled publishes telemetry on agent_com.>. Defaults to true.
	Enabled bool `mapstructure:"enabled"`
	// Observer lets clients without credentials subscribe to telemetry
	// (and do nothing else): "auto" (the default) while NATS listens on
	// loopback only, "on" or "off".
	Observer string `mapstructure:"observer"`
	// MaxAge and MaxMB bound the TELEMETRY stream. Default 24h and 0:
	// auto, the smaller of AutoTelemetryMB and an eighth of the space the
	// store may use on its volume.
	MaxAge time.Duration `mapstructure:"max_age"`
	MaxMB  int64         `mapstructure:"max_mb"`
}

// Largest automatic sizes, in MiB, of the best-effort streams: the
// bounds that apply on a volume large enough.
const (
	AutoLogStreamMB = 1024
	AutoTelemetryMB = 256
)

// TelemetryDefaults are the defaults of the telemetry keys.
var TelemetryDefaults = Telemetry{Enabled: true, Observer: "auto", MaxAge: 24 * time.Hour}

// ObserverAllowed resolves telemetry.observer against the NATS listener.
func (h Hub) ObserverAllowed() bool {
	switch h.Telemetry.Observer {
	case "on":
		return true
	case "off":
		return false
	}
	return loopback(h.NATS.Listen)
}

// Agents are the timings of agent liveness and task leases.
type Agents struct {
	// AcceptanceTimeout is how long an agent has to accept an assignment
	// before the task is reclaimed and the agent flagged. Defaults to 60s.
	AcceptanceTimeout time.Duration `mapstructure:"acceptance_timeout"`
	// StuckThreshold is how long a working task may go without a progress
	// heartbeat before it is reclaimed. Defaults to 10m.
	StuckThreshold time.Duration `mapstructure:"stuck_threshold"`
	// HeartbeatInterval is how often sidecars are told to heartbeat.
	// Defaults to 30s.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval"`
	// ReapAfter evicts an agent silent for this long. Defaults to 60s.
	ReapAfter time.Duration `mapstructure:"reap_after"`
	// ReconnectGrace is how long a task stays with an agent that went
	// offline, so that a quick reconnect can continue it. Defaults to 30s.
	ReconnectGrace time.Duration `mapstructure:"reconnect_grace"`
	// SweepInterval is how often leases and liveness are checked.
	// Defaults to 5s.
	SweepInterval time.Duration `mapstructure:"sweep_interval"`
	// RequestRate is the requests per second each agent may make on
	// average; 0 means no limit. Defaults to 500.
	RequestRate float64 `mapstructure:"request_rate"`
	// RequestBurst is how many requests an agent may make at once above
	// the rate. Defaults to 1000.
	RequestBurst int `mapstructure:"request_burst"`
	// ViolationThreshold is how many refused requests and permission
	// violations within ViolationWindow disconnect an agent; 0 means
	// never. Defaults to 10.
	ViolationThreshold int `mapstructure:"violation_threshold"`
	// ViolationWindow is the span the threshold counts over. Defaults to 1m.
	ViolationWindow time.Duration `mapstructure:"violation_window"`
	// ViolationCooldown is how long a disconnected agent is refused the
	// first time (twice as long the second, ten times from the third).
	// Defaults to 30s.
	ViolationCooldown time.Duration `mapstructure:"violation_cooldown"`
	// ViolationLogInterval is how often an agent's violations are
	// summarised in the log. Defaults to 10s.
	ViolationLogInterval time.Duration `mapstructure:"violation_log_interval"`
	// DailyBudgetUSD stops assigning to an agent once its completions
	// reported this much cost on the day (UTC). 0, the default: no budget.
	DailyBudgetUSD float64 `mapstructure:"daily_budget_usd"`
	// Budgets are agents' own daily budgets in USD, by agent id, over
	// DailyBudgetUSD (0: none for that agent). None by default.
	Budgets map[string]float64 `mapstructure:"budgets"`
	// DefaultRepo is the repository new agents work in: onboarding hands
	// it out with the agent's token. Empty, the default: none.
	DefaultRepo string `mapstructure:"default_repo"`
}

// BudgetOf is an agent's daily budget in USD: its own, else the default
// (0: none).
func (a Agents) BudgetOf(agentID string) float64 {
	if b, ok := a.Budgets[agentID]; ok {
		return b
	}
	return a.DailyBudgetUSD
}

// AgentDefaults are the defaults of the agents keys.
var AgentDefaults = Agents{
	AcceptanceTimeout: 60 * time.Second, StuckThreshold: 10 * time.Minute, HeartbeatInterval: 30 * time.Second,
	ReapAfter: 60 * time.Second, ReconnectGrace: 30 * time.Second, SweepInterval: 5 * time.Second,
	RequestRate: 500, RequestBurst: 1000, ViolationThreshold: 10, ViolationWindow: time.Minute,
	ViolationCooldown: 30 * time.Second, ViolationLogInterval: 10 * time.Second,
}

// Listener is one listening address and its TLS.
type Listener struct {
	Listen string `mapstructure:"listen"`
	// TLS serves the listener over TLS (mutual TLS with a client CA).
	TLS TLS `mapstructure:"tls"`
	// Insecure lets the listener take plain-text connections beyond
	// loopback. Without TLS the hub refuses to listen beyond loopback
	// unless this says so.
	Insecure bool `mapstructure:"insecure"`
}

// TLS is a listener's certificate, its key, and the CA that client
// certificates must be signed by (optional: mutual TLS).
type TLS struct {
	Cert     string `mapstructure:"cert"`
	Key      string `mapstructure:"key"`
	ClientCA string `mapstructure:"client_ca"`
}

// On reports whether TLS is configured.
func (t TLS) On() bool { return t.Cert != "" || t.Key != "" }

// check says what is wrong with a listener's TLS, naming its keys
// (prefix "nats" or "http"): a certificate without its key, a file that
// cannot be read, plain text beyond loopback without insecure.
func (l Listener) check(prefix string) error {
	if err := checkListen(prefix+".listen", l.Listen); err != nil {
		return err
	}
	t := l.TLS
	switch {
	case t.On() && (t.Cert == "" || t.Key == ""):
		return fmt.Errorf("%s.tls: set both cert and key (cert %q, key %q)", prefix, t.Cert, t.Key)
	case !t.On() && t.ClientCA != "":
		return fmt.Errorf("%s.tls.client_ca: needs %s.tls.cert and %s.tls.key", prefix, prefix, prefix)
	case !t.On() && !l.Insecure && !loopback(l.Listen):
		return fmt.Errorf("%s.listen: %s is beyond loopback without TLS: set %s.tls.cert and %s.tls.key, "+
			"or %s.insecure: true to take plain-text connections", prefix, l.Listen, prefix, prefix, prefix)
	}
	for key, file := range map[string]string{"cert": t.Cert, "key": t.Key, "client_ca": t.ClientCA} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%s.tls.%s: %w", prefix, key, err)
		}
	}
	return nil
}

// NATSListener is the NATS clients' address and the server's monitoring.
type NATSListener struct {
	Listener `mapstructure:",squash"`
	// Monitor is where the embedded server serves its HTTP monitoring
	// (/varz, /connz, /jsz), for nats server report and NATS exporters.
	// Empty, the default: off. It has no authentication of its own, so it
	// must be on loopback.
	Monitor string `mapstructure:"monitor"`
}

// check checks the listener and the monitoring address.
func (n NATSListener) check() error {
	if err := n.Listener.check("nats"); err != nil {
		return err
	}
	if n.Monitor == "" {
		return nil
	}
	if err := checkListen("nats.monitor", n.Monitor); err != nil {
		return err
	}
	if !loopback(n.Monitor) {
		return fmt.Errorf("nats.monitor: %s is beyond loopback: the monitoring port has no authentication, "+
			"so it listens on loopback only (such as 127.0.0.1:8222); reach it through a tunnel or a proxy", n.Monitor)
	}
	return nil
}

// HTTPListener is the HTTP API's address and who may read without a
// token.
type HTTPListener struct {
	Listener `mapstructure:",squash"`
	// OpenReads lets callers without a token read (tasks, agents, stats)
	// while HTTP listens on loopback only. Defaults to true; beyond
	// loopback reads always need a token.
	OpenReads bool `mapstructure:"open_reads"`
}

// OpenReads reports whether HTTP reads need no token: http.open_reads,
// and HTTP on loopback only.
func (h Hub) OpenReads() bool { return h.HTTP.OpenReads && loopback(h.HTTP.Listen) }

// loopback reports whether a listen address is on loopback only.
func loopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// Store is the event store's durability setting.
type Store struct {
	// Sync is "always" (fsync every write before acknowledging it; the
	// default) or an interval such as "1s" (fsync at most that often).
	Sync string `mapstructure:"sync"`
	// SyncInterval is Sync parsed: 0 for always.
	SyncInterval time.Duration `mapstructure:"-"`
	// Retention is how long finished tasks keep their detailed events
	// before compaction summarises them. Defaults to 720h (30 days).
	Retention time.Duration `mapstructure:"retention"`
	// CompactionInterval is how often compaction runs. Defaults to 6h.
	CompactionInterval time.Duration `mapstructure:"compaction_interval"`
	// BackupInterval is how often a backup is taken. Defaults to 24h.
	BackupInterval time.Duration `mapstructure:"backup_interval"`
	// BackupKeep is how many backups are kept. Defaults to 3.
	BackupKeep int `mapstructure:"backup_keep"`
	// SnapshotInterval is how often the projections are snapshotted.
	// Defaults to 5m.
	SnapshotInterval time.Duration `mapstructure:"snapshot_interval"`
	// MaxMB is the most the JetStream server may store, in MiB. 0 (the
	// default) is auto: what the store holds plus the volume's free space,
	// less the reserve.
	MaxMB int64 `mapstructure:"max_mb"`
	// ReserveMB is the free space, in MiB, below which the hub refuses
	// writes (store_full) rather than let the volume fill. Defaults to 4.
	ReserveMB int64 `mapstructure:"reserve_mb"`
	// KeepFinished is how many finished tasks (completed, cancelled) stay
	// in memory; older ones are read back from the stream when asked for.
	// 0 keeps every one. Defaults to 10000.
	KeepFinished int `mapstructure:"keep_finished"`
}

// StoreDefaults are the defaults of the store.* keys besides sync.
var StoreDefaults = Store{Retention: 720 * time.Hour, CompactionInterval: 6 * time.Hour,
	BackupInterval: 24 * time.Hour, BackupKeep: 3, SnapshotInterval: 5 * time.Minute, ReserveMB: 4,
	KeepFinished: 10000}

// durations are the store's duration keys and values: one list for the
// defaults and the checks.
func (s Store) durations() map[string]time.Duration {
	return map[string]time.Duration{"store.retention": s.Retention,
		"store.compaction_interval": s.CompactionInterval, "store.backup_interval": s.BackupInterval,
		"store.snapshot_interval": s.SnapshotInterval}
}

func (s Store) validate() error {
	errs := positive(s.durations(), "6h")
	if s.BackupKeep < 1 {
		errs = append(errs, errors.New("store.backup_keep: must be at least 1"))
	}
	if s.MaxMB < 0 {
		errs = append(errs, errors.New("store.max_mb: must not be negative (0 is auto)"))
	}
	if s.KeepFinished < 0 {
		errs = append(errs, errors.New("store.keep_finished: must not be negative (0 keeps every finished task)"))
	}
	if s.ReserveMB < 1 {
		errs = append(errs, errors.New("store.reserve_mb: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Log is the logging setting.
type Log struct {
	// Level is the lowest level written: debug, info, notice, warning or
	// error. Defaults to info.
	Level string `mapstructure:"level"`
	// Format is how stdout shows lines: auto (the default: readable lines
	// on a terminal, JSON otherwise), json or console. Files and the LOGS
	// stream are JSON whatever it is.
	Format string `mapstructure:"format"`
	// Modules sets levels per module, such as {agents: debug}; the names
	// are logsink.Modules.
	Modules map[string]string `mapstructure:"modules"`
	// MaxSizeMB is the size at which the log file is rotated. Defaults to 10.
	MaxSizeMB int `mapstructure:"max_size_mb"`
	// MaxBackups is how many compressed old files are kept. Defaults to 5.
	MaxBackups int `mapstructure:"max_backups"`
	// StreamMaxMB bounds the LOGS stream, where records wait for the log
	// sink. 0 (the default) is auto: the smaller of AutoLogStreamMB and an
	// eighth of the space the store may use on its volume.
	StreamMaxMB int64 `mapstructure:"stream_max_mb"`
}

func (l Log) validate() error {
	errs := []error{checkOneOf("log.level", l.Level, LogLevels), checkOneOf("log.format", l.Format, LogFormats)}
	for m, lvl := range l.Modules {
		if !logsink.KnownModule(m) {
			errs = append(errs, fmt.Errorf("log.modules.%s: unknown module %q; the modules are %s", m, m, logsink.ModuleList()))
			continue
		}
		errs = append(errs, checkOneOf("log.modules."+m, lvl, LogLevels))
	}
	if l.MaxSizeMB < 1 {
		errs = append(errs, errors.New("log.max_size_mb: must be at least 1"))
	}
	if l.MaxBackups < 0 {
		errs = append(errs, errors.New("log.max_backups: must not be negative"))
	}
	if l.StreamMaxMB < 0 {
		errs = append(errs, errors.New("log.stream_max_mb: must not be negative (0 is auto)"))
	}
	return errors.Join(errs...)
}

var hubFlags = map[string]string{
	"nats.listen":     "nats-listen",
	"http.listen":     "http-listen",
	"data_dir":        "data-dir",
	"store.sync":      "sync",
	"log.level":       "log-level",
	"log.format":      "log-format",
	"log.max_size_mb": "log-max-size-mb",
	"log.max_backups": "log-max-backups",
}

// HubFlags defines the hub's flags on fs.
func HubFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file")
	fs.String("nats-listen", DefaultNATSListen, "NATS client listen address (port 0 picks one)")
	fs.String("http-listen", DefaultHTTPListen, "HTTP API listen address (port 0 picks one)")
	fs.String("data-dir", DefaultDataDir(), "data directory (JetStream store, admin.token)")
	fs.String("sync", DefaultSync, `fsync policy: "always" or an interval such as "1s"`)
	fs.String("log-level", DefaultLogLevel, "log level: debug, info, notice, warning, error")
	fs.String("log-format", DefaultLogFormat, "stdout log format: auto (console on a terminal, else json), json, console")
	fs.Int("log-max-size-mb", DefaultLogMaxSizeMB, "rotate the log file at this size")
	fs.Int("log-max-backups", DefaultLogMaxBackups, "compressed old log files to keep")
}

// LoadHub builds and validates the hub configuration. fs holds the flags
// from HubFlags.
func LoadHub(fs *pflag.FlagSet) (Hub, error) {
	v := newViper()
	v.SetDefault("nats.listen", DefaultNATSListen)
	v.SetDefault("http.listen", DefaultHTTPListen)
	v.SetDefault("http.open_reads", true)
	v.SetDefault("nats.monitor", "")
	v.SetDefault("rate_limits.light", RateLimitDefaults.Light)
	v.SetDefault("rate_limits.normal", RateLimitDefaults.Normal)
	v.SetDefault("rate_limits.heavy", RateLimitDefaults.Heavy)
	for _, l := range []string{"nats", "http"} {
		for _, key := range []string{"tls.cert", "tls.key", "tls.client_ca"} {
			v.SetDefault(l+"."+key, "")
		}
		v.SetDefault(l+".insecure", false)
	}
	v.SetDefault("data_dir", DefaultDataDir())
	v.SetDefault("store.sync", DefaultSync)
	setLogDefaults(v)
	for key, d := range StoreDefaults.durations() {
		v.SetDefault(key, d)
	}
	v.SetDefault("store.backup_keep", StoreDefaults.BackupKeep)
	v.SetDefault("store.max_mb", StoreDefaults.MaxMB)
	v.SetDefault("store.reserve_mb", StoreDefaults.ReserveMB)
	v.SetDefault("store.keep_finished", StoreDefaults.KeepFinished)
	td := TelemetryDefaults
	v.SetDefault("telemetry.enabled", td.Enabled)
	v.SetDefault("telemetry.observer", td.Observer)
	v.SetDefault("telemetry.max_age", td.MaxAge)
	v.SetDefault("telemetry.max_mb", td.MaxMB)
	for key, d := range AgentDefaults.durations() {
		v.SetDefault(key, d)
	}
	v.SetDefault("agents.request_rate", AgentDefaults.RequestRate)
	v.SetDefault("agents.daily_budget_usd", 0.0)
	v.SetDefault("agents.default_repo", "")
	v.SetDefault("agents.request_burst", AgentDefaults.RequestBurst)
	v.SetDefault("agents.violation_threshold", AgentDefaults.ViolationThreshold)
	for key, d := range TaskDefaults.durations() {
		v.SetDefault(key, d)
	}
	v.SetDefault("tasks.idempotency_window", TaskDefaults.IdempotencyWindow)
	setAlertDefaults(v)
	setMessageDefaults(v)
	if err := bind(v, fs, hubFlags); err != nil {
		return Hub{}, err
	}
	var h Hub
	if err := v.UnmarshalExact(&h); err != nil {
		return Hub{}, fmt.Errorf("load config: %w", err)
	}
	return h, h.validate()
}

// validate checks every key and fills derived fields.
func (h *Hub) validate() error {
	errs := []error{
		h.NATS.check(),
		h.HTTP.check("http"),
		h.Log.validate(),
		checkOneOf("telemetry.observer", h.Telemetry.Observer, []string{"auto", "on", "off"}),
	}
	if h.Telemetry.MaxAge <= 0 {
		errs = append(errs, errors.New("telemetry.max_age: must be positive"))
	}
	if h.Telemetry.MaxMB < 0 {
		errs = append(errs, errors.New("telemetry.max_mb: must not be negative (0 is auto)"))
	}
	d, err := parseSync(h.Store.Sync)
	h.Store.SyncInterval = d
	errs = append(errs, err, h.Agents.validate(), h.Store.validate(), h.Tasks.validate(), h.RateLimits.validate(),
		h.Alerts.validate(), h.Messages.validate())
	if h.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	} else if abs, err := filepath.Abs(h.DataDir); err == nil {
		h.DataDir = abs
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	return nil
}

// durations are the agents.* keys and values: one list for the defaults
// and the checks.
func (a Agents) durations() map[string]time.Duration {
	return map[string]time.Duration{
		"agents.acceptance_timeout": a.AcceptanceTimeout, "agents.stuck_threshold": a.StuckThreshold,
		"agents.heartbeat_interval": a.HeartbeatInterval, "agents.reap_after": a.ReapAfter,
		"agents.reconnect_grace": a.ReconnectGrace, "agents.sweep_interval": a.SweepInterval,
		"agents.violation_window": a.ViolationWindow, "agents.violation_cooldown": a.ViolationCooldown,
		"agents.violation_log_interval": a.ViolationLogInterval,
	}
}

func (a Agents) validate() error {
	var errs []error
	if a.DailyBudgetUSD < 0 {
		errs = append(errs, fmt.Errorf("agents.daily_budget_usd: %g must not be negative (0: no budget)", a.DailyBudgetUSD))
	}
	for id, b := range a.Budgets {
		if err := domain.CheckAgentID(id); err != nil {
			errs = append(errs, fmt.Errorf("agents.budgets: %q: %w", id, err))
		} else if b < 0 {
			errs = append(errs, fmt.Errorf("agents.budgets.%s: %g must not be negative (0: no budget)", id, b))
		}
	}
	errs = append(errs, positive(a.durations(), "30s")...)
	if a.RequestRate < 0 || a.RequestBurst < 1 || a.ViolationThreshold < 0 {
		errs = append(errs, errors.New("agents.request_rate, agents.request_burst and agents.violation_threshold: "+
			"the rate and the threshold must be 0 (no limit) or more, the burst at least 1"))
	}
	if a.HeartbeatInterval > 0 && a.ReapAfter > 0 && a.ReapAfter <= a.HeartbeatInterval {
		errs = append(errs, errors.New("agents.reap_after: must be longer than agents.heartbeat_interval"))
	}
	return errors.Join(append(errs, a.checkProgress(), checkRepo(a.DefaultRepo))...)
}

// checkProgress refuses a stuck threshold that sidecars cannot keep well
// inside: they report progress every third of it, and no sidecar's
// progress_interval may be under MinProgressEvery.
func (a Agents) checkProgress() error {
	least := MinProgressEvery * protocol.ProgressDivisor
	if a.StuckThreshold <= 0 || a.StuckThreshold >= least {
		return nil
	}
	return fmt.Errorf("agents.stuck_threshold: %s would ask sidecars for progress every %s (a third of it), "+
		"under the least sidecar progress_interval, %s; make agents.stuck_threshold at least %s",
		a.StuckThreshold, a.StuckThreshold/protocol.ProgressDivisor, MinProgressEvery, least)
}
