package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/sidecar"
)

// TestOneSidecarWorksThroughShortTasksWithoutDeclining: the real sidecar,
// one agent, 500 tasks of `true`. The hub pushes the next task as soon as
// it stored a completion, before the sidecar has its answer; the sidecar
// must take it, not decline it as busy (which idled the agent 5 s).
func TestOneSidecarWorksThroughShortTasksWithoutDeclining(t *testing.T) {
	t.Parallel()
	h := startHubWith(t, "", 0, logsink.LevelWarning)
	startSidecar(t, h, "one-agent", "true", nil)
	var mu sync.Mutex
	runSubmits(t, h, 500, &mu, map[string]time.Time{})
	waitAllCompleted(t, h, 500, 5*time.Minute)
	counts := reclaims(t, h)
	require.Zero(t, declines(counts), "declines: %v", counts)
	require.Empty(t, counts, "nothing is taken back either")
	require.False(t, h.coord.sched.cooling("one-agent"))
}

// TestSidecarKeepsProgressInsideTheStuckThreshold: a sidecar configured to
// report progress every hour still keeps a 3 s task alive on a hub that
// takes a working task back after 1 s without progress: the hello answer
// tells it to report every third of the threshold.
func TestSidecarKeepsProgressInsideTheStuckThreshold(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelWarning, fastLeases)
	startSidecar(t, h, "slow-agent", "sleep 3", func(c *sidecar.Config) { c.ProgressInterval = time.Hour })
	id := h.submit(t, `{"description":"three seconds"}`)
	waitStatus(t, h, id, domain.StatusCompleted)
	require.Empty(t, reclaims(t, h), "the task was never taken back as stuck")
}
