package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// agentcomEnv lists every variable the hub and client configs read.
var agentcomEnv = []string{
	"AGENTCOM_NATS_LISTEN", "AGENTCOM_HTTP_LISTEN", "AGENTCOM_DATA_DIR",
	"AGENTCOM_STORE_SYNC", "AGENTCOM_LOG_LEVEL", "AGENTCOM_LOG_FORMAT", "AGENTCOM_HUB", "AGENTCOM_TOKEN",
}

// clearEnv blanks every AGENTCOM_* variable for the test; viper ignores
// empty variables, so the runner's own environment cannot leak in.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range agentcomEnv {
		t.Setenv(k, "")
	}
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func loadHub(t *testing.T, args ...string) (Hub, error) {
	t.Helper()
	fs := pflag.NewFlagSet("hub", pflag.ContinueOnError)
	HubFlags(fs)
	require.NoError(t, fs.Parse(args))
	return LoadHub(fs)
}

func loadClient(t *testing.T, args ...string) (Client, error) {
	t.Helper()
	fs := pflag.NewFlagSet("client", pflag.ContinueOnError)
	ClientFlags(fs)
	require.NoError(t, fs.Parse(args))
	return LoadClient(fs, "admin.token")
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	return abs
}

func TestLoadHubDefaults(t *testing.T) {
	clearEnv(t)
	xdg := t.TempDir()
	home := t.TempDir()

	tests := []struct {
		name    string
		xdg     string
		wantDir string
	}{
		{name: "xdg data home", xdg: xdg, wantDir: filepath.Join(xdg, "agentcom")},
		{name: "home fallback", xdg: "", wantDir: filepath.Join(home, ".local", "share", "agentcom")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tc.xdg)
			t.Setenv("HOME", home)

			h, err := loadHub(t)
			require.NoError(t, err)
			require.Equal(t, Hub{
				Agents:    AgentDefaults,
				Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
				NATS:    NATSListener{Listener: Listener{Listen: "127.0.0.1:4222"}},
				HTTP:    HTTPListener{Listener: Listener{Listen: "127.0.0.1:4000"}, OpenReads: true},
				DataDir: tc.wantDir,
				Store:   Store{Sync: "always", SyncInterval: 0, Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
				Log:     Log{Level: "info", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
			}, h)
			require.True(t, filepath.IsAbs(h.DataDir), "data_dir %q is not absolute", h.DataDir)
		})
	}
}

func TestLoadHubRelativeDataDirBecomesAbsolute(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		dir  string
	}{
		{name: "plain", dir: "some-data"},
		{name: "dotted", dir: "./a/../b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			h, err := loadHub(t, "--data-dir", tc.dir)
			require.NoError(t, err)
			require.Equal(t, mustAbs(t, tc.dir), h.DataDir)
			require.True(t, filepath.IsAbs(h.DataDir))
		})
	}
}

const fullYAML = `nats:
  listen: 127.0.0.1:5222
http:
  listen: 0.0.0.0:5000
  insecure: true
data_dir: %DIR%
store:
  sync: 250ms
log:
  level: debug
`

func TestLoadHubPrecedence(t *testing.T) {
	clearEnv(t)
	tmp := t.TempDir()
	fileDir := filepath.Join(tmp, "from-file")
	envDir := filepath.Join(tmp, "from-env")
	flagDir := filepath.Join(tmp, "from-flag")
	full := writeFile(t, tmp, "full.yaml", strings.ReplaceAll(fullYAML, "%DIR%", fileDir))
	partial := writeFile(t, tmp, "partial.yaml", "nats:\n  listen: 127.0.0.1:5222\nlog:\n  level: notice\n")

	allEnv := map[string]string{
		"AGENTCOM_NATS_LISTEN": "127.0.0.1:6222",
		"AGENTCOM_HTTP_LISTEN": "127.0.0.1:6000",
		"AGENTCOM_DATA_DIR":    envDir,
		"AGENTCOM_STORE_SYNC":  "2s",
		"AGENTCOM_LOG_LEVEL":   "warning",
	}
	allFlags := []string{
		"--nats-listen", "127.0.0.1:7222",
		"--http-listen", "127.0.0.1:7000",
		"--data-dir", flagDir,
		"--sync", "5ms",
		"--log-level", "error",
	}
	fileHub := Hub{
		Agents:    AgentDefaults,
		Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
		NATS:    NATSListener{Listener: Listener{Listen: "127.0.0.1:5222"}},
		HTTP:    HTTPListener{Listener: Listener{Listen: "0.0.0.0:5000", Insecure: true}, OpenReads: true},
		DataDir: fileDir,
		Store:   Store{Sync: "250ms", SyncInterval: 250 * time.Millisecond, Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
		Log:     Log{Level: "debug", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
	}
	envHub := Hub{
		Agents:    AgentDefaults,
		Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
		NATS:    NATSListener{Listener: Listener{Listen: "127.0.0.1:6222"}},
		HTTP:    HTTPListener{Listener: Listener{Listen: "127.0.0.1:6000"}, OpenReads: true},
		DataDir: envDir,
		Store:   Store{Sync: "2s", SyncInterval: 2 * time.Second, Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
		Log:     Log{Level: "warning", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
	}
	flagHub := Hub{
		Agents:    AgentDefaults,
		Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
		NATS:    NATSListener{Listener: Listener{Listen: "127.0.0.1:7222"}},
		HTTP:    HTTPListener{Listener: Listener{Listen: "127.0.0.1:7000"}, OpenReads: true},
		DataDir: flagDir,
		Store:   Store{Sync: "5ms", SyncInterval: 5 * time.Millisecond, Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
		Log:     Log{Level: "error", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Hub
	}{
		{name: "file only", args: []string{"--config", full}, want: fileHub},
		{name: "env only", env: allEnv, want: envHub},
		{name: "flags only", args: allFlags, want: flagHub},
		{name: "env overrides file", env: allEnv, args: []string{"--config", full}, want: insecureHTTP(envHub)},
		{name: "flags override env and file", env: allEnv, args: append([]string{"--config", full}, allFlags...), want: insecureHTTP(flagHub)},
		{name: "flags override env", env: allEnv, args: allFlags, want: flagHub},
		{
			name: "partial file keeps defaults for other keys",
			args: []string{"--config", partial, "--data-dir", flagDir},
			want: Hub{
				Agents:    AgentDefaults,
				Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
				NATS:    NATSListener{Listener: Listener{Listen: "127.0.0.1:5222"}},
				HTTP:    HTTPListener{Listener: Listener{Listen: DefaultHTTPListen}, OpenReads: true},
				DataDir: flagDir,
				Store:   Store{Sync: "always", SyncInterval: 0, Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
				Log:     Log{Level: "notice", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
			},
		},
		{
			name: "per key: flag, env and file each win where set",
			env:  map[string]string{"AGENTCOM_HTTP_LISTEN": "127.0.0.1:6000", "AGENTCOM_STORE_SYNC": "2s"},
			args: []string{"--config", full, "--log-level", "error"},
			want: Hub{
				Agents:    AgentDefaults,
				Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
				NATS:    NATSListener{Listener: Listener{Listen: "127.0.0.1:5222"}},
				HTTP:    HTTPListener{Listener: Listener{Listen: "127.0.0.1:6000", Insecure: true}, OpenReads: true},
				DataDir: fileDir,
				Store:   Store{Sync: "2s", SyncInterval: 2 * time.Second, Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
				Log:     Log{Level: "error", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
			},
		},
		{
			name: "flag set to its default still beats env",
			env:  map[string]string{"AGENTCOM_LOG_LEVEL": "warning"},
			args: []string{"--log-level", "info", "--data-dir", flagDir},
			want: Hub{
				Agents:    AgentDefaults,
				Telemetry: TelemetryDefaults, Tasks: TaskDefaults, RateLimits: RateLimitDefaults, Alerts: AlertDefaults, Messages: MessageDefaults,
				NATS:    NATSListener{Listener: Listener{Listen: DefaultNATSListen}},
				HTTP:    HTTPListener{Listener: Listener{Listen: DefaultHTTPListen}, OpenReads: true},
				DataDir: flagDir,
				Store:   Store{Sync: "always", Retention: StoreDefaults.Retention, CompactionInterval: StoreDefaults.CompactionInterval, BackupInterval: StoreDefaults.BackupInterval, BackupKeep: StoreDefaults.BackupKeep, SnapshotInterval: StoreDefaults.SnapshotInterval, ReserveMB: StoreDefaults.ReserveMB, KeepFinished: StoreDefaults.KeepFinished},
				Log:     Log{Level: "info", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)

			h, err := loadHub(t, tc.args...)
			require.NoError(t, err)
			require.Equal(t, tc.want, h)
		})
	}
}

const syncErr = `store.sync: must be "always" or an interval of at least 1ms such as "1s"`

func TestLoadHubInvalidFlags(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{
			name:    "nats.listen not host:port",
			args:    []string{"--nats-listen", "abc"},
			wantErr: `invalid config: nats.listen: "abc" is not host:port`,
		},
		{
			name:    "nats.listen without host",
			args:    []string{"--nats-listen", ":4222"},
			wantErr: `invalid config: nats.listen: ":4222" has no host; use 127.0.0.1 or 0.0.0.0 explicitly`,
		},
		{
			name:    "http.listen port out of range",
			args:    []string{"--http-listen", "127.0.0.1:99999"},
			wantErr: `invalid config: http.listen: port "99999" must be a number from 0 to 65535`,
		},
		{
			name:    "http.listen port not a number",
			args:    []string{"--http-listen", "127.0.0.1:http"},
			wantErr: `invalid config: http.listen: port "http" must be a number from 0 to 65535`,
		},
		{
			name:    "http.listen negative port",
			args:    []string{"--http-listen", "127.0.0.1:-1"},
			wantErr: `invalid config: http.listen: port "-1" must be a number from 0 to 65535`,
		},
		{
			name:    "log.level unknown",
			args:    []string{"--log-level", "loud"},
			wantErr: `invalid config: log.level: "loud" is not one of debug, info, notice, warning, error`,
		},
		{
			name:    "log.level is case sensitive",
			args:    []string{"--log-level", "INFO"},
			wantErr: `invalid config: log.level: "INFO" is not one of debug, info, notice, warning, error`,
		},
		{name: "store.sync word", args: []string{"--sync", "sometimes"}, wantErr: "invalid config: " + syncErr},
		{name: "store.sync zero", args: []string{"--sync", "0s"}, wantErr: "invalid config: " + syncErr},
		{name: "store.sync below 1ms", args: []string{"--sync", "500us"}, wantErr: "invalid config: " + syncErr},
		{name: "store.sync negative", args: []string{"--sync", "-1s"}, wantErr: "invalid config: " + syncErr},
		{name: "store.sync bare number", args: []string{"--sync", "5"}, wantErr: "invalid config: " + syncErr},
		{
			name:    "data_dir empty",
			args:    []string{"--data-dir", ""},
			wantErr: "invalid config: data_dir: must not be empty",
		},
		{
			name: "every bad key is reported",
			args: []string{"--nats-listen", "abc", "--http-listen", "127.0.0.1:99999", "--log-level", "loud", "--sync", "sometimes", "--data-dir", ""},
			wantErr: "invalid config: " +
				`nats.listen: "abc" is not host:port` + "\n" +
				`http.listen: port "99999" must be a number from 0 to 65535` + "\n" +
				`log.level: "loud" is not one of debug, info, notice, warning, error` + "\n" +
				syncErr + "\n" +
				"data_dir: must not be empty",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			// Pin every key to a valid value first so the runner's
			// environment cannot add or hide errors; later flags win.
			args := append([]string{
				"--nats-listen", DefaultNATSListen, "--http-listen", DefaultHTTPListen,
				"--sync", "always", "--log-level", "info", "--data-dir", t.TempDir(),
			}, tc.args...)
			_, err := loadHub(t, args...)
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

func TestLoadHubValidEdgeValues(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		args     []string
		wantNATS string
		wantHTTP string
		wantSync time.Duration
		wantLog  string
	}{
		{name: "port 0 picks a free port", args: []string{"--nats-listen", "127.0.0.1:0", "--http-listen", "[::1]:0"}, wantNATS: "127.0.0.1:0", wantHTTP: "[::1]:0", wantSync: 0, wantLog: "info"},
		{name: "highest port and 1ms", args: []string{"--http-listen", "[::1]:65535", "--sync", "1ms"}, wantNATS: DefaultNATSListen, wantHTTP: "[::1]:65535", wantSync: time.Millisecond, wantLog: "info"},
		{name: "sync always and level notice", args: []string{"--sync", "always", "--log-level", "notice"}, wantNATS: DefaultNATSListen, wantHTTP: DefaultHTTPListen, wantSync: 0, wantLog: "notice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			args := append([]string{
				"--nats-listen", DefaultNATSListen, "--http-listen", DefaultHTTPListen,
				"--sync", "always", "--log-level", "info", "--data-dir", t.TempDir(),
			}, tc.args...)
			h, err := loadHub(t, args...)
			require.NoError(t, err)
			require.Equal(t, tc.wantNATS, h.NATS.Listen)
			require.Equal(t, tc.wantHTTP, h.HTTP.Listen)
			require.Equal(t, tc.wantSync, h.Store.SyncInterval)
			require.Equal(t, tc.wantLog, h.Log.Level)
		})
	}
}

func TestLoadHubInvalidFromFileAndEnv(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()

	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantErr string
	}{
		{
			name:    "file nats.listen",
			file:    "nats:\n  listen: abc\n",
			wantErr: `invalid config: nats.listen: "abc" is not host:port`,
		},
		{
			name:    "file log.level",
			file:    "log:\n  level: loud\n",
			wantErr: `invalid config: log.level: "loud" is not one of debug, info, notice, warning, error`,
		},
		{
			name:    "file store.sync",
			file:    "store:\n  sync: sometimes\n",
			wantErr: "invalid config: " + syncErr,
		},
		{
			name:    "env http.listen",
			env:     map[string]string{"AGENTCOM_HTTP_LISTEN": "127.0.0.1:99999"},
			wantErr: `invalid config: http.listen: port "99999" must be a number from 0 to 65535`,
		},
		{
			name:    "env log.level",
			env:     map[string]string{"AGENTCOM_LOG_LEVEL": "loud"},
			wantErr: `invalid config: log.level: "loud" is not one of debug, info, notice, warning, error`,
		},
		{
			name:    "env store.sync zero",
			env:     map[string]string{"AGENTCOM_STORE_SYNC": "0s"},
			wantErr: "invalid config: " + syncErr,
		},
		{
			name:    "file tasks.retry_base above retry_max",
			file:    "tasks:\n  retry_base: 1h\n  retry_max: 1m\n",
			wantErr: "invalid config: tasks.retry_max: must not be shorter than tasks.retry_base",
		},
		{
			name:    "env tasks.retry_base zero",
			env:     map[string]string{"AGENTCOM_TASKS_RETRY_BASE": "0s"},
			wantErr: "invalid config: tasks.retry_base: must be a positive duration of at most 168h0m0s, such as 1s",
		},
		{
			name: "env agents.stuck_threshold too short for sidecar progress",
			env:  map[string]string{"AGENTCOM_AGENTS_STUCK_THRESHOLD": "20ms"},
			wantErr: "invalid config: agents.stuck_threshold: 20ms would ask sidecars for progress every 6.666666ms " +
				"(a third of it), under the least sidecar progress_interval, 10ms; make agents.stuck_threshold at least 30ms",
		},
		{
			name:    "bad env value overrides good file value",
			file:    "store:\n  sync: 1s\n",
			env:     map[string]string{"AGENTCOM_STORE_SYNC": "sometimes"},
			wantErr: "invalid config: " + syncErr,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			args := []string{"--data-dir", dir}
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, dir, "c"+string(rune('a'+i))+".yaml", tc.file))
			}

			_, err := loadHub(t, args...)
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

func TestLoadHubUnknownKeyInFile(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		file     string
		wantKeys []string
	}{
		{name: "top level", file: "bogus: 1\n", wantKeys: []string{"invalid keys: bogus"}},
		{name: "nested", file: "nats:\n  listen: 127.0.0.1:4222\n  lisen: x\n", wantKeys: []string{"'nats' has invalid keys: lisen"}},
		{name: "dashed spelling of data_dir", file: "data-dir: /tmp/x\n", wantKeys: []string{"invalid keys: data-dir"}},
		{name: "derived field is not a key", file: "store:\n  sync_interval: 1s\n", wantKeys: []string{"'store' has invalid keys: sync_interval"}},
		{name: "two unknown keys", file: "bogus: 1\nhttp:\n  port: 4000\n", wantKeys: []string{"invalid keys: bogus", "'http' has invalid keys: port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			path := writeFile(t, t.TempDir(), "hub.yaml", tc.file)
			_, err := loadHub(t, "--config", path)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "load config: "), "error %q", err)
			for _, k := range tc.wantKeys {
				require.ErrorContains(t, err, k)
			}
		})
	}
}

func TestLoadHubConfigFileProblems(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "hub.yaml")
	broken := writeFile(t, dir, "broken.yaml", "nats: [unclosed\n")

	tests := []struct {
		name       string
		path       string
		wantPrefix string
		notExist   bool
	}{
		{name: "missing file", path: missing, wantPrefix: "read config file " + missing + ": ", notExist: true},
		{name: "malformed yaml", path: broken, wantPrefix: "read config file " + broken + ": "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			_, err := loadHub(t, "--config", tc.path)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.wantPrefix), "error %q does not start with %q", err, tc.wantPrefix)
			require.Equal(t, tc.notExist, errors.Is(err, fs.ErrNotExist))
		})
	}
}

func TestLoadClient(t *testing.T) {
	clearEnv(t)
	tmp := t.TempDir()
	withFile := filepath.Join(tmp, "with-file")
	require.NoError(t, os.Mkdir(withFile, 0o700))
	writeFile(t, withFile, "admin.token", "  tok-file \n\n")
	envDir := filepath.Join(tmp, "env-dir")
	require.NoError(t, os.Mkdir(envDir, 0o700))
	writeFile(t, envDir, "admin.token", "tok-env-dir\n")
	empty := filepath.Join(tmp, "empty")
	require.NoError(t, os.Mkdir(empty, 0o700))

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Client
	}{
		{
			name: "flag token wins over env and file",
			env:  map[string]string{"AGENTCOM_TOKEN": "tok-env"},
			args: []string{"--token", "tok-flag", "--data-dir", withFile},
			want: Client{Hub: DefaultHub, Token: "tok-flag", DataDir: withFile},
		},
		{
			name: "env token wins over file",
			env:  map[string]string{"AGENTCOM_TOKEN": "tok-env"},
			args: []string{"--data-dir", withFile},
			want: Client{Hub: DefaultHub, Token: "tok-env", DataDir: withFile},
		},
		{
			name: "file token is trimmed",
			args: []string{"--data-dir", withFile},
			want: Client{Hub: DefaultHub, Token: "tok-file", DataDir: withFile},
		},
		{
			name: "data dir and hub from env",
			env:  map[string]string{"AGENTCOM_DATA_DIR": envDir, "AGENTCOM_HUB": "nats://10.0.0.1:4222"},
			want: Client{Hub: "nats://10.0.0.1:4222", Token: "tok-env-dir", DataDir: envDir},
		},
		{
			name: "flags beat env for hub and data dir",
			env:  map[string]string{"AGENTCOM_DATA_DIR": envDir, "AGENTCOM_HUB": "nats://10.0.0.1:4222"},
			args: []string{"--data-dir", withFile, "--hub", "nats://10.0.0.2:4222"},
			want: Client{Hub: "nats://10.0.0.2:4222", Token: "tok-file", DataDir: withFile},
		},
		{
			name: "flag token needs no file",
			args: []string{"--token", "tok-flag", "--data-dir", empty},
			want: Client{Hub: DefaultHub, Token: "tok-flag", DataDir: empty},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)

			c, err := loadClient(t, tc.args...)
			require.NoError(t, err)
			require.Equal(t, tc.want, c)
		})
	}
}

func TestLoadClientMissingTokenFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()

	_, err := loadClient(t, "--data-dir", dir)
	require.Error(t, err)
	require.ErrorContains(t, err, "no token: pass --token, set AGENTCOM_TOKEN, or point --data-dir at the hub's data directory")
	require.ErrorContains(t, err, filepath.Join(dir, "admin.token"))
	require.True(t, errors.Is(err, fs.ErrNotExist), "want a not-exist cause, got %v", err)
}

// Without a token the rest of the client config still resolves, for
// commands that may go on anonymously (agentcom events).
func TestLoadClientWithoutATokenStillResolvesTheHub(t *testing.T) {
	clearEnv(t)
	t.Setenv("AGENTCOM_HUB", "nats://hub.example:4222")
	c, err := loadClient(t, "--data-dir", t.TempDir())
	require.ErrorIs(t, err, ErrNoToken)
	require.Equal(t, "nats://hub.example:4222", c.Hub)
	require.Empty(t, c.Token)
}

func TestLoadHubLogKeys(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "hub.yaml")
	require.NoError(t, os.WriteFile(file, []byte("log:\n  level: notice\n  modules:\n    agents: debug\n"), 0o600))
	t.Setenv("AGENTCOM_LOG_MAX_SIZE_MB", "3")
	fs := pflag.NewFlagSet("hub", pflag.ContinueOnError)
	HubFlags(fs)
	require.NoError(t, fs.Parse([]string{"--config", file, "--log-max-backups", "2", "--data-dir", dir}))
	h, err := LoadHub(fs)
	require.NoError(t, err)
	require.Equal(t, Log{Level: "notice", Format: "auto", Modules: map[string]string{"agents": "debug"}, MaxSizeMB: 3, MaxBackups: 2}, h.Log)

	require.NoError(t, os.WriteFile(file, []byte("log:\n  modules:\n    agents: chatty\n"), 0o600))
	_, err = LoadHub(fs)
	require.ErrorContains(t, err, "log.modules.agents")

	// Only modules that exist: a made-up one is refused, naming it and
	// listing the known ones.
	require.NoError(t, os.WriteFile(file, []byte("log:\n  modules:\n    shceduler: debug\n"), 0o600))
	_, err = LoadHub(fs)
	require.EqualError(t, err, `invalid config: log.modules.shceduler: unknown module "shceduler"; the modules are `+
		"agents, api, command, http, hub, main, metrics, nats, sidecar, store, telemetry, workflows")
}

// TestLogFormat: log.format is auto by default and set like every key,
// for hub and sidecar; an unknown format is refused naming the key.
func TestLogFormat(t *testing.T) {
	clearEnv(t)
	clearSidecarEnv(t)
	dir := t.TempDir()
	h, err := loadHub(t, "--data-dir", dir)
	require.NoError(t, err)
	require.Equal(t, "auto", h.Log.Format)
	h, err = loadHub(t, "--data-dir", dir, "--log-format", "console")
	require.NoError(t, err)
	require.Equal(t, "console", h.Log.Format)
	h, err = loadHub(t, "--data-dir", dir, "--config", writeFile(t, dir, "f.yaml", "log:\n  format: console\n"))
	require.NoError(t, err)
	require.Equal(t, "console", h.Log.Format)
	t.Setenv("AGENTCOM_LOG_FORMAT", "json")
	h, err = loadHub(t, "--data-dir", dir)
	require.NoError(t, err)
	require.Equal(t, "json", h.Log.Format)
	s, err := loadSidecar(t, "--agent-id", "a", "--token", "tok", "--exec", "true")
	require.NoError(t, err)
	require.Equal(t, "json", s.Log.Format)

	t.Setenv("AGENTCOM_LOG_FORMAT", "pretty")
	_, err = loadHub(t, "--data-dir", dir)
	require.EqualError(t, err, `invalid config: log.format: "pretty" is not one of auto, json, console`)
	_, err = loadSidecar(t, "--agent-id", "a", "--token", "tok", "--exec", "true", "--log-format", "text")
	require.EqualError(t, err, `invalid config: log.format: "text" is not one of auto, json, console`)
}

// Reads are open only on loopback and only while http.open_reads allows.
// insecureHTTP is h with the file's http.insecure.
func insecureHTTP(h Hub) Hub {
	h.HTTP.Insecure = true
	return h
}

func TestOpenReads(t *testing.T) {
	clearEnv(t)
	h, err := loadHub(t)
	require.NoError(t, err)
	require.True(t, h.OpenReads(), "the default: loopback, open")
	t.Setenv("AGENTCOM_HTTP_INSECURE", "true")
	h, err = loadHub(t, "--http-listen", "0.0.0.0:4000")
	require.NoError(t, err)
	require.False(t, h.OpenReads(), "beyond loopback reads need a token")
	t.Setenv("AGENTCOM_HTTP_OPEN_READS", "false")
	h, err = loadHub(t, "--http-listen", "127.0.0.1:4000")
	require.NoError(t, err)
	require.False(t, h.OpenReads(), "http.open_reads: false closes them on loopback too")
}

// A listener beyond loopback needs TLS or insecure: true; TLS needs both
// files, readable; each error names its key.
func TestListenerTLSChecks(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	require.NoError(t, os.WriteFile(cert, []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(key, []byte("x"), 0o600))
	for _, tc := range []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{"AGENTCOM_NATS_LISTEN": "0.0.0.0:4222"},
			"nats.listen: 0.0.0.0:4222 is beyond loopback without TLS: set nats.tls.cert and nats.tls.key, or nats.insecure: true"},
		{map[string]string{"AGENTCOM_HTTP_TLS_CERT": cert}, "http.tls: set both cert and key"},
		{map[string]string{"AGENTCOM_NATS_TLS_CLIENT_CA": cert}, "nats.tls.client_ca: needs nats.tls.cert and nats.tls.key"},
		{map[string]string{"AGENTCOM_HTTP_TLS_CERT": cert, "AGENTCOM_HTTP_TLS_KEY": filepath.Join(dir, "nope.pem")},
			"http.tls.key: stat " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{map[string]string{"AGENTCOM_NATS_LISTEN": "0.0.0.0:4222", "AGENTCOM_NATS_INSECURE": "true"}, ""},
		{map[string]string{"AGENTCOM_HTTP_LISTEN": "0.0.0.0:4000", "AGENTCOM_HTTP_TLS_CERT": cert, "AGENTCOM_HTTP_TLS_KEY": key}, ""},
	} {
		t.Run(tc.wantErr, func(t *testing.T) {
			setEnv(t, tc.env) // t.Setenv: undone when the subtest ends
			_, err := loadHub(t)
			if tc.wantErr == "" {
				require.NoError(t, err, tc.env)
			} else {
				require.ErrorContains(t, err, tc.wantErr)
			}
		})
	}
}
