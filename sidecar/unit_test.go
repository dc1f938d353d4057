package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
)

func TestBackoffDoublesToMaxAndResets(t *testing.T) {
	t.Parallel()
	b := newBackoff(time.Second, 60*time.Second)
	var got []time.Duration
	for range 9 {
		got = append(got, b.next())
	}
	s := time.Second
	require.Equal(t, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s, 60 * s}, got)
	b.reset()
	require.Equal(t, s, b.next())

	j := newBackoff(time.Second, 60*time.Second)
	j.jitter = true
	for i := range 10 {
		d := j.next()
		want := min(time.Second<<i, 60*time.Second)
		require.LessOrEqual(t, d, want)
		require.GreaterOrEqual(t, d, want*4/5)
	}
}

func TestTailAndLimitedBuffers(t *testing.T) {
	t.Parallel()
	tail := tailBuffer{size: 5}
	for _, s := range []string{"abc", "defgh", "ij", strings.Repeat("k", 20), "xyz"} {
		_, _ = tail.Write([]byte(s))
	}
	require.Equal(t, "kkxyz", string(tail.bytes()))

	lim := limitedBuffer{limit: 4}
	_, _ = lim.Write([]byte("ab"))
	require.False(t, lim.over)
	_, _ = lim.Write([]byte("cdef"))
	require.True(t, lim.over)
	require.Equal(t, "abcd", lim.buf.String())
	require.Equal(t, 6, lim.n)
}

func TestResultOf(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"{\"a\": 1}\n": `{"a": 1}`,
		"  [1,2]  ":    `[1,2]`,
		"true\n":       `true`,
		"hi\n":         `"hi"`,
		"hi\n\n":       `"hi\n"`,
		"":             `""`,
		"{broken\n":    `"{broken"`,
		"\"quoted\"":   `"quoted"`,
	}
	for in, want := range tests {
		require.Equal(t, want, string(resultOf([]byte(in))), "stdout %q", in)
	}
}

// A run killed before it recorded its process group is still found: by
// the leader's task id and generation, never another assignment's.
func TestEndUnrecordedFindsTheAssignmentsGroup(t *testing.T) {
	t.Parallel()
	pid, exited := startOrphan(t, "t3", generationVar+"=4")
	require.Zero(t, endUnrecorded("t3", 5), "another generation's group is not this run's")
	require.Zero(t, endUnrecorded("t4", 4))
	require.False(t, processGone(pid))
	require.Equal(t, pid, endUnrecorded("t3", 4))
	closedSoon(t, exited, "the unrecorded group was not killed")
}

func TestEndOrphanNeedsTheTaskMarker(t *testing.T) {
	t.Parallel()
	pid, exited := startOrphan(t, "")
	require.False(t, endOrphan(pid, "t1"), "a group without the marker is not ours")
	require.False(t, processGone(pid))

	pid2, exited2 := startOrphan(t, "t2")
	require.False(t, endOrphan(pid2, "t1"), "another task's group is not ours")
	require.True(t, endOrphan(pid2, "t2"))
	closedSoon(t, exited2, "marked group not killed")
	require.False(t, endOrphan(0, "t2"))
	select {
	case <-exited:
		t.Fatal("unmarked process was killed")
	default:
	}
}

// Not parallel: it sets the environment.
func TestChildEnvDropsAgentcomVariables(t *testing.T) {
	t.Setenv("AGENTCOM_TOKEN", "secret")
	t.Setenv("AGENTCOM_HUB", "nats://x")
	t.Setenv("KEEP_ME", "1")
	env := childEnv("AGENTCOM_TASK_ID=t1")
	require.Contains(t, env, "KEEP_ME=1")
	require.Contains(t, env, "AGENTCOM_TASK_ID=t1")
	for _, kv := range env {
		require.False(t, strings.HasPrefix(kv, "AGENTCOM_TOKEN=") || strings.HasPrefix(kv, "AGENTCOM_HUB="), kv)
	}
}

func TestConfigCheckAndDefaults(t *testing.T) {
	t.Parallel()
	err := Config{AgentID: "a.b", Exec: "x", Wake: "y"}.withDefaults().check()
	require.EqualError(t, err, "invalid sidecar config: agent_id: \"a.b\" is not one subject token\n"+
		"token: required\nexec, wake: set exactly one\nresults_dir: required with wake\nstate_dir: required")

	c := FromConfig(config.Sidecar{AgentID: "a", Token: "t", Hub: "nats://h:1", Exec: "x", StateDir: "/s",
		ProgressInterval: time.Second, MaxTasks: 2, TaskTimeout: time.Minute}).withDefaults()
	require.NoError(t, c.check())
	require.Equal(t, time.Second, c.ProgressInterval)
	require.Equal(t, 2, c.MaxTasks)
	require.Equal(t, time.Minute, c.TaskTimeout)
	require.Equal(t, DefaultWakeRetryDelays, c.WakeRetryDelays)
	require.Equal(t, DefaultRetryMax, c.RetryMax)
	require.Equal(t, []string{}, c.Capabilities)
}
