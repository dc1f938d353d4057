package hub

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
)

// startScheduleHub runs a hub on a fake clock whose schedules look at it
// every few milliseconds.
func startScheduleHub(t *testing.T, dir string, clock *fakeClock) *testHub {
	t.Helper()
	return startHubOpts(t, dir, logsink.LevelDebug, hubOpts{now: clock.Now, paused: true, schedulePoll: 5 * time.Millisecond},
		func(cfg *config.Hub) { cfg.Store.SyncInterval = 0 })
}

// ticks are the ticks of the tasks schedule name submitted, in order.
func (h *testHub) ticks(name string) []time.Time {
	var out []time.Time
	for _, t := range h.views.Tasks.List(projections.Filter{}) {
		if t.Extras != nil && t.Schedule == name {
			out = append(out, *t.Tick)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// waitPolls waits until the schedules have looked at the clock n times
// more.
func (h *testHub) waitPolls(t *testing.T, n uint64) {
	t.Helper()
	from := h.schedules.Polls()
	require.Eventually(t, func() bool { return h.schedules.Polls() >= from+n }, 15*time.Second, time.Millisecond)
}

// waitTicks waits until schedule name has submitted n tasks.
func (h *testHub) waitTicks(t *testing.T, name string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(h.ticks(name)) >= n }, 15*time.Second, 5*time.Millisecond,
		"schedule %s never reached %d ticks", name, n)
}

// TestAScheduleEveryMinuteSubmitsTenTasksInTenMinutesAcrossARestart moves
// an injected clock a minute at a time: each minute submits exactly one
// task, the hub restarts after the fifth, and the ten tasks are the ten
// ticks, each once.
func TestAScheduleEveryMinuteSubmitsTenTasksInTenMinutesAcrossARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: base}
	h := startScheduleHub(t, dir, clock)
	code, out := h.do(t, http.MethodPost, "/api/schedules", h.token,
		`{"name":"minutely","cron":"* * * * *","task":{"description":"tick","priority":"high"}}`)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, base.Add(time.Minute).Format(time.RFC3339), out["next_tick"])
	for i := 1; i <= 10; i++ {
		if i == 6 {
			h.Stop()
			h = startScheduleHub(t, dir, clock)
		}
		clock.Advance(time.Minute)
		h.waitTicks(t, "minutely", i)
	}
	h.waitPolls(t, 5) // five looks at the clock more: nothing else is due
	ticks := h.ticks("minutely")
	require.Len(t, ticks, 10)
	for i, tick := range ticks {
		require.Equal(t, base.Add(time.Duration(i+1)*time.Minute), tick)
		task := h.task(t, domain.TickTaskID("minutely", tick))
		require.Equal(t, domain.PriorityHigh, task.Priority)
	}
	require.Equal(t, 10, h.views.Tasks.Stats().Total)
}

// TestAMissedTickRunsOnceOrIsSkipped: ticks that came while the hub was
// down run once (catch_up once: the newest of them) or not at all (skip).
func TestAMissedTickRunsOnceOrIsSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: base}
	h := startScheduleHub(t, dir, clock)
	for _, body := range []string{
		`{"name":"once","every":"1m","task":{"description":"catch up"}}`,
		`{"name":"skip","every":"1m","catch_up":"skip","task":{"description":"wait"}}`,
	} {
		code, out := h.do(t, http.MethodPost, "/api/schedules", h.token, body)
		require.Equal(t, http.StatusCreated, code, out)
	}
	h.Stop()
	clock.Advance(5*time.Minute + 40*time.Second) // five ticks missed, the last 40 s ago
	h = startScheduleHub(t, dir, clock)
	h.waitTicks(t, "once", 1)
	h.waitPolls(t, 5)
	require.Equal(t, []time.Time{base.Add(5 * time.Minute)}, h.ticks("once"), "the newest missed tick, once")
	require.Empty(t, h.ticks("skip"))
	clock.Advance(20 * time.Second) // the next tick, on time, runs for both
	h.waitTicks(t, "skip", 1)
	h.waitTicks(t, "once", 2)
	require.Equal(t, []time.Time{base.Add(6 * time.Minute)}, h.ticks("skip"))

	code, out := h.do(t, http.MethodPost, "/api/schedules", h.token, `{"name":"bad","cron":"61 * * * *","task":{}}`)
	require.Equal(t, 422, code)
	require.ElementsMatch(t, []string{"cron", "task.description"}, fields(out))
	code, out = h.do(t, http.MethodPost, "/api/schedules", h.token, `{"name":"feb30","cron":"0 0 30 2 *","task":{"description":"x"}}`)
	require.Equal(t, 422, code)
	require.Contains(t, fmt.Sprint(out), "never fires")
	code, _ = h.do(t, http.MethodDelete, "/api/schedules/once", h.token, "")
	require.Equal(t, 200, code)
	clock.Advance(time.Minute)
	h.waitTicks(t, "skip", 2)
	require.Len(t, h.ticks("once"), 2, "a deleted schedule ticks no more")
}

// fields are the fields an error answer names.
func fields(out map[string]any) []string {
	var fs []string
	for _, e := range out["errors"].([]any) {
		fs = append(fs, e.(map[string]any)["field"].(string))
	}
	return fs
}
