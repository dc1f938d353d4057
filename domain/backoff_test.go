package domain_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

func durPtr(d time.Duration) *time.Duration { return &d }

func TestBackoffDelayDoublesUpToMax(t *testing.T) {
	t.Parallel()
	b := domain.Backoff{Base: time.Second, Max: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		require.Equal(t, w, b.Delay(i+1, 0), "failure %d", i+1)
	}
	require.Equal(t, 10*time.Second, b.Delay(1000, 0), "a large count must not overflow")
	// Jitter takes away at most RetryJitter of the delay, never adds.
	require.Equal(t, 4*time.Second-time.Duration(float64(4*time.Second)*domain.RetryJitter*0.5), b.Delay(3, 0.5))
	require.Equal(t, 8*time.Second, b.Delay(4, -1), "jitter below 0 is 0")
	require.Equal(t, time.Duration(0), domain.Backoff{}.Delay(3, 0.3), "no backoff is no wait")
}

func TestBackoffForUsesTheTasksOverride(t *testing.T) {
	t.Parallel()
	require.Equal(t, domain.DefaultBackoff, domain.DefaultBackoff.For(&domain.Task{}), "no override")
	task := &domain.Task{Extras: &domain.Extras{RetryOverride: domain.RetryOverride{RetryBase: domain.Duration(5 * time.Second)}}}
	b := domain.DefaultBackoff.For(task)
	require.Equal(t, domain.Backoff{Base: 5 * time.Second, Max: domain.DefaultRetryMax}, b)
	task.RetryMax = domain.Duration(3 * time.Second)
	require.Equal(t, 3*time.Second, domain.DefaultBackoff.For(task).Max)
	require.Equal(t, 5*time.Second, domain.DefaultBackoff.For(task).Delay(4, 0), "max below base: base")
}

func TestFailTaskWaitsOutTheBackoff(t *testing.T) {
	t.Parallel()
	task := held(domain.StatusWorking) // retry_count 1 of 3
	cmd := domain.FailTask{ID: "task-1", AgentID: "a1", Generation: 3, Error: "boom",
		Backoff: domain.Backoff{Base: time.Second, Max: time.Minute}, Jitter: 0}
	evs, err := decide(t, cmd, task)
	require.NoError(t, err)
	runAfter := now.Add(2 * time.Second) // the second failure waits base*2
	require.Equal(t, []domain.Event{
		domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 2},
		domain.TaskRetried{Generation: 4, RunAfter: &runAfter},
	}, evs)

	next := domain.Evolve(task, domain.Envelope{Type: domain.TypeTaskRetried, Time: now, Aggregate: "task-1", Data: evs[1]})
	require.Equal(t, domain.StatusQueued, next.Status)
	require.Equal(t, &runAfter, next.RunAfter)
	require.False(t, next.Due(now.Add(time.Second)))
	require.True(t, next.Due(runAfter))

	assigned := domain.Evolve(next, domain.Envelope{Type: domain.TypeTaskAssigned, Time: runAfter,
		Aggregate: "task-1", Data: domain.TaskAssigned{AgentID: "a1", Generation: 5}})
	require.Nil(t, assigned.RunAfter, "an assignment ends the wait")
}

func TestSubmitRunAtAndBackoffOverride(t *testing.T) {
	t.Parallel()
	runAt := now.Add(time.Hour)
	cmd := domain.SubmitTask{ID: "task-1", Description: "later", Priority: domain.PriorityNormal,
		RunAt: &runAt, RetryBase: durPtr(5 * time.Second), RetryMax: durPtr(time.Minute)}
	evs, err := decide(t, cmd, nil)
	require.NoError(t, err)
	task := domain.Evolve(nil, domain.Envelope{Type: domain.TypeTaskSubmitted, Time: now, Aggregate: "task-1", Data: evs[0]})
	require.Equal(t, &runAt, task.RunAfter)
	require.Equal(t, domain.Duration(5*time.Second), task.RetryBase)
	b, err := json.Marshal(task)
	require.NoError(t, err)
	require.Contains(t, string(b), `"retry_base":"5s","retry_max":"1m0s","run_after":"`+runAt.Format(time.RFC3339)+`"`)
}

func TestSubmitRejectsBadRunAtAndBackoff(t *testing.T) {
	t.Parallel()
	cb := now.Add(time.Hour)
	late := now.Add(2 * time.Hour)
	err := domain.SubmitTask{ID: "t", Description: "x", CompleteBy: &cb, RunAt: &late,
		RetryBase: durPtr(time.Minute), RetryMax: durPtr(time.Second)}.Validate(now)
	requireFields(t, err, fe("run_at", "invalid"), fe("retry_max", "invalid"))
	err = domain.SubmitTask{ID: "t", Description: "x", RetryBase: durPtr(-time.Second)}.Validate(now)
	requireFields(t, err, fe("retry_base", "out_of_range"))
	err = domain.SubmitTask{ID: "t", Description: "a\x00b"}.Validate(now)
	requireFields(t, err, fe("description", "invalid"))
}

func TestOldRetriedEventsDecode(t *testing.T) {
	t.Parallel()
	env, err := domain.DecodeEnvelope([]byte(`{"id":"e1","type":"task.retried","v":1,"time":"2025-01-01T00:00:00Z","aggregate":"t1","data":{"generation":2}}`))
	require.NoError(t, err)
	require.Equal(t, domain.TaskRetried{Generation: 2}, env.Data, "a version 1 retry runs at once")
}
