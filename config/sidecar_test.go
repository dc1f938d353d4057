package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// sidecarEnv lists every variable the sidecar config reads.
var sidecarEnv = []string{
	"AGENTCOM_AGENT_ID", "AGENTCOM_TOKEN", "AGENTCOM_TOKEN_FILE", "AGENTCOM_HUB", "AGENTCOM_NAME", "AGENTCOM_CAPABILITIES",
	"AGENTCOM_EXEC", "AGENTCOM_WAKE", "AGENTCOM_RESULTS_DIR", "AGENTCOM_STATE_DIR",
	"AGENTCOM_TASK_TIMEOUT", "AGENTCOM_PROGRESS_INTERVAL", "AGENTCOM_MAX_TASKS", "AGENTCOM_LOG_LEVEL", "AGENTCOM_LOG_FORMAT",
}

func clearSidecarEnv(t *testing.T) {
	t.Helper()
	for _, k := range sidecarEnv {
		t.Setenv(k, "")
	}
}

func loadSidecar(t *testing.T, args ...string) (Sidecar, error) {
	t.Helper()
	fs := pflag.NewFlagSet("sidecar", pflag.ContinueOnError)
	SidecarFlags(fs)
	require.NoError(t, fs.Parse(args))
	return LoadSidecar(fs)
}

func TestLoadSidecarDefaults(t *testing.T) {
	clearSidecarEnv(t)
	xdg := t.TempDir()
	t.Setenv("XDG_DATA_HOME", xdg)

	s, err := loadSidecar(t, "--agent-id", "gcu-1", "--token", "tok", "--exec", "run-agent")
	require.NoError(t, err)
	require.Equal(t, Sidecar{
		AgentID: "gcu-1", Token: "tok", Hub: DefaultHub, Capabilities: []string{}, Exec: "run-agent",
		StateDir: filepath.Join(xdg, "agentcom", "sidecar-gcu-1"), ProgressInterval: 30 * time.Second,
		MaxTasks: 1, Log: Log{Level: "info", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
	}, s)
}

const sidecarYAML = `agent_id: from-file
token: tok-file
hub: nats://file:4222
name: File Agent
capabilities: [code, docs]
wake: wake-file ${TASK_ID}
results_dir: %DIR%/results
state_dir: %DIR%/state
task_timeout: 10m
progress_interval: 15s
max_tasks: 2
log:
  level: debug
`

func TestLoadSidecarPrecedence(t *testing.T) {
	clearSidecarEnv(t)
	tmp := t.TempDir()
	file := writeFile(t, tmp, "sidecar.yaml", strings.ReplaceAll(sidecarYAML, "%DIR%", tmp))
	fromFile := Sidecar{
		AgentID: "from-file", Token: "tok-file", Hub: "nats://file:4222", Name: "File Agent",
		Capabilities: []string{"code", "docs"}, Wake: "wake-file ${TASK_ID}",
		ResultsDir: filepath.Join(tmp, "results"), StateDir: filepath.Join(tmp, "state"),
		TaskTimeout: 10 * time.Minute, ProgressInterval: 15 * time.Second, MaxTasks: 2, Log: Log{Level: "debug", Format: "auto", Modules: map[string]string{}, MaxSizeMB: 10, MaxBackups: 5},
	}
	env := map[string]string{
		"AGENTCOM_AGENT_ID": "from-env", "AGENTCOM_CAPABILITIES": "review,test", "AGENTCOM_TASK_TIMEOUT": "1h",
		"AGENTCOM_MAX_TASKS": "3", "AGENTCOM_STATE_DIR": filepath.Join(tmp, "env-state"),
	}
	fromEnv := fromFile
	fromEnv.AgentID, fromEnv.Capabilities, fromEnv.TaskTimeout = "from-env", []string{"review", "test"}, time.Hour
	fromEnv.MaxTasks, fromEnv.StateDir = 3, filepath.Join(tmp, "env-state")
	flags := []string{"--agent-id", "from-flag", "--capability", "go", "--capability", "sql",
		"--progress-interval", "5s", "--max-tasks", "4", "--token", "tok-flag", "--log-level", "notice"}
	fromFlags := fromEnv
	fromFlags.AgentID, fromFlags.Capabilities, fromFlags.ProgressInterval = "from-flag", []string{"go", "sql"}, 5*time.Second
	fromFlags.MaxTasks, fromFlags.Token, fromFlags.Log.Level = 4, "tok-flag", "notice"

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Sidecar
	}{
		{name: "file", args: []string{"--config", file}, want: fromFile},
		{name: "env beats file", env: env, args: []string{"--config", file}, want: fromEnv},
		{name: "flags beat env and file", env: env, args: append([]string{"--config", file}, flags...), want: fromFlags},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			s, err := loadSidecar(t, tc.args...)
			require.NoError(t, err)
			require.Equal(t, tc.want, s)
		})
	}
}

// TestLoadSidecarTokenFile: the token comes from a file, by flag or
// environment, so that it is not in the process list.
func TestLoadSidecarTokenFile(t *testing.T) {
	clearSidecarEnv(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "agent.token", "ac_secret\n")
	base := []string{"--agent-id", "a", "--exec", "x", "--state-dir", dir}

	s, err := loadSidecar(t, append(base, "--token-file", path)...)
	require.NoError(t, err)
	require.Equal(t, "ac_secret", s.Token, "the file's token, without its newline")
	require.Equal(t, path, s.TokenFile)

	t.Setenv("AGENTCOM_TOKEN_FILE", path)
	s, err = loadSidecar(t, base...)
	require.NoError(t, err)
	require.Equal(t, "ac_secret", s.Token)

	empty := writeFile(t, dir, "empty.token", " \n")
	_, err = loadSidecar(t, append(base, "--token-file", empty)...)
	require.ErrorContains(t, err, "token_file: "+empty+" is empty")
}

func TestLoadSidecarRelativeDirsBecomeAbsolute(t *testing.T) {
	t.Parallel()
	s, err := loadSidecar(t, "--agent-id", "a", "--token", "t", "--wake", "w", "--results-dir", "res",
		"--state-dir", "./x/../st")
	require.NoError(t, err)
	require.Equal(t, mustAbs(t, "res"), s.ResultsDir)
	require.Equal(t, mustAbs(t, "st"), s.StateDir)
}

func TestLoadSidecarInvalid(t *testing.T) {
	t.Parallel()
	many := make([]string, 0, 2*(MaxCapabilities+1))
	for range MaxCapabilities + 1 {
		many = append(many, "--capability", "c")
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "agent_id missing", args: []string{"--agent-id", ""}, wantErr: "agent_id: required (env AGENTCOM_AGENT_ID)"},
		{name: "agent_id not a token", args: []string{"--agent-id", "a.b"}, wantErr: `agent_id: "a.b" may hold only letters, digits, '_' and '-'`},
		{name: "agent_id wildcard", args: []string{"--agent-id", "a*"}, wantErr: `agent_id: "a*" may hold only letters, digits, '_' and '-'`},
		{name: "agent_id too long", args: []string{"--agent-id", strings.Repeat("a", 129)}, wantErr: "agent_id: 129 characters, at most 128"},
		{name: "token missing", args: []string{"--token", ""}, wantErr: "token: required: --token-file FILE (env AGENTCOM_TOKEN_FILE) or --token (env AGENTCOM_TOKEN)"},
		{name: "token and token_file", args: []string{"--token-file", "/etc/hostname"}, wantErr: "token, token_file: set only one"},
		{name: "token_file missing", args: []string{"--token", "", "--token-file", "/nonexistent/agent.token"},
			wantErr: "token_file: read the agent's token: open /nonexistent/agent.token: no such file or directory"},
		{name: "token_file a directory", args: []string{"--token", "", "--token-file", "/"},
			wantErr: "token_file: read the agent's token: read /: is a directory"},
		{name: "exec and wake", args: []string{"--wake", "w", "--results-dir", "r"}, wantErr: "exec, wake: set only one"},
		{name: "neither exec nor wake", args: []string{"--exec", " "}, wantErr: "exec, wake: set one"},
		{name: "wake without results_dir", args: []string{"--exec", "", "--wake", "w"}, wantErr: "results_dir: required with wake"},
		{name: "max_tasks zero", args: []string{"--max-tasks", "0"}, wantErr: "max_tasks: 0 must be at least 1"},
		{name: "progress_interval tiny", args: []string{"--progress-interval", "1ms"}, wantErr: "progress_interval: 1ms must be at least 10ms"},
		{name: "task_timeout negative", args: []string{"--task-timeout", "-1s"}, wantErr: "task_timeout: -1s must not be negative (0 means no limit)"},
		{name: "log.level", args: []string{"--log-level", "loud"}, wantErr: `log.level: "loud" is not one of debug, info, notice, warning, error`},
		{name: "blank capability", args: []string{"--capability", "ok", "--capability", " "}, wantErr: "capabilities[1]: must not be blank"},
		{name: "long capability", args: []string{"--capability", strings.Repeat("c", 129)}, wantErr: "capabilities[0]: 129 bytes, at most 128"},
		{name: "too many capabilities", args: many, wantErr: "capabilities: 33 given, at most 32"},
		{name: "hub empty", args: []string{"--hub", ""}, wantErr: "hub: must not be empty"},
		{
			name: "every bad key is reported",
			args: []string{"--agent-id", "", "--token", "", "--max-tasks", "0", "--log-level", "loud"},
			wantErr: "agent_id: required (env AGENTCOM_AGENT_ID)\n" +
				`log.level: "loud" is not one of debug, info, notice, warning, error` + "\n" +
				"token: required: --token-file FILE (env AGENTCOM_TOKEN_FILE) or --token (env AGENTCOM_TOKEN)\n" +
				"max_tasks: 0 must be at least 1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Pin every key to a valid value first so the runner's
			// environment cannot add or hide errors; later flags win.
			args := append([]string{
				"--agent-id", "a1", "--token", "tok", "--hub", DefaultHub, "--exec", "run",
				"--state-dir", t.TempDir(), "--max-tasks", "1", "--progress-interval", "30s",
				"--task-timeout", "0s", "--log-level", "info",
			}, tc.args...)
			_, err := loadSidecar(t, args...)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "invalid config: "), "error %q", err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// TestLoadSidecarLogKeys checks that the sidecar validates every log key,
// as the hub does, not only log.level.
func TestLoadSidecarLogKeys(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "s.yaml", "log:\n  modules: {sidecar: loud}\n  max_size_mb: 0\n")
	_, err := loadSidecar(t, "--config", path, "--agent-id", "a1", "--token", "t", "--exec", "x", "--state-dir", t.TempDir())
	require.Error(t, err)
	require.ErrorContains(t, err, `log.modules.sidecar: "loud" is not one of`)
	require.ErrorContains(t, err, "log.max_size_mb: must be at least 1")
}

func TestLoadSidecarFileProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, file, want string
	}{
		{name: "unknown key", file: "agent_id: a\nbogus: 1\n", want: "invalid keys: bogus"},
		{name: "dashed key", file: "agent-id: a\n", want: "invalid keys: agent-id"},
		{name: "max_tasks not a number", file: "max_tasks: many\n", want: "max_tasks"},
		{name: "task_timeout not a duration", file: "task_timeout: soon\n", want: "task_timeout"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, dir, string(rune('a'+i))+".yaml", tc.file)
			_, err := loadSidecar(t, "--config", path, "--token", "t", "--exec", "x")
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "load config: "), "error %q", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
