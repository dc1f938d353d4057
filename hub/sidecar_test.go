package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
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
	require.False(t, h.coord.CoolingDown("one-agent"))
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

// TestSidecarResultLimit: with the real sidecar, a result at the limit is
// completed and stored; stdout over it (6 MiB), or a result over it once
// encoded as JSON, fails the task saying the size and the limit, instead
// of "nats: maximum payload exceeded"; a raw report over it is refused.
func TestSidecarResultLimit(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelWarning, func(*config.Hub) {})
	startSidecar(t, h, "big-results", `eval "$AGENTCOM_TASK_DESCRIPTION"`, nil) // each task says what to print
	submit := func(command string) string {
		body, err := json.Marshal(map[string]any{"description": command, "max_retries": 1})
		require.NoError(t, err)
		return h.submit(t, string(body))
	}
	// A JSON string of limit-2 letters, with its quotes: exactly the limit.
	atLimit := submit(fmt.Sprintf(`head -c %d /dev/zero | tr '\0' a`, domain.MaxResultBytes-2))
	sixMiB := submit(`head -c 6291456 /dev/zero | tr '\0' a`)
	quotes := submit(`head -c 2000000 /dev/zero | tr '\0' '"'`) // 2 MB of '"' is 4,000,002 bytes as JSON

	task := waitStatus(t, h, atLimit, domain.StatusCompleted)
	require.Len(t, task.Result, domain.MaxResultBytes)
	task = waitStatus(t, h, sixMiB, domain.StatusDeadLetter)
	require.Equal(t, "result is 6291456 bytes, limit 3145728 (max_payload 4194304 less 1 MiB for the message around it)", task.LastError)
	task = waitStatus(t, h, quotes, domain.StatusDeadLetter)
	require.Equal(t, domain.ResultTooLarge(4000002), task.LastError)

	raw := newTestAgent(t, h, "raw-reporter", []string{"raw"}, ignore)
	id := h.submit(t, `{"description":"raw","needed_capabilities":["raw"]}`)
	waitStatus(t, h, id, domain.StatusAssigned)
	task, _, _ = h.Tasks().Get(id)
	big := append(append([]byte{'"'}, bytes.Repeat([]byte("b"), domain.MaxResultBytes)...), '"')
	status, body := raw.request(broker.VerbComplete, protocol.Complete{TaskID: id, Generation: task.Generation, Result: big})
	require.Equal(t, 422, status, string(body))
	require.Contains(t, string(body), domain.ResultTooLarge(len(big)))
}
