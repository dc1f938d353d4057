package hub

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/agents"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// TestManyAgentsJoiningADeepQueueLoseNoTask has 50 agents say hello at
// once to a hub with 10,000 queued tasks. A hello must settle what the agent
// holds before the agent can be given work: no task assigned in the
// meantime may be taken back as lost (agent_lost_task), and no accept may
// be refused.
func TestManyAgentsJoiningADeepQueueLoseNoTask(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelWarning, func(c *config.Hub) { c.Store.SyncInterval = time.Second })
	var mu sync.Mutex
	runSubmits(t, h, 10000, &mu, map[string]time.Time{})
	var refused, done atomic.Int64
	work := func(a *testAgent, as protocol.Assignment) {
		if a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation}) != 200 {
			refused.Add(1)
			return
		}
		if a.call(broker.VerbComplete, protocol.Complete{TaskID: as.TaskID, Generation: as.Generation}) == 200 {
			done.Add(1)
		}
	}
	joiners := make([]*testAgent, 50)
	for i := range joiners {
		joiners[i] = dialTestAgent(t, h, fmt.Sprintf("joiner-%02d", i), work)
	}
	statuses := make([]int, len(joiners))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range joiners {
		wg.Go(func() {
			<-start
			statuses[i] = a.hello(nil)
		})
	}
	close(start)
	wg.Wait()
	for i, st := range statuses {
		require.Equal(t, 200, st, "hello of %s", joiners[i].id)
	}
	require.Eventually(t, func() bool {
		for _, a := range joiners {
			if len(a.assignments()) < 3 {
				return false
			}
		}
		return true
	}, time.Minute, 10*time.Millisecond, "every agent gets work")
	require.Zero(t, reclaims(t, h)[agents.ReasonAgentLostTask], "tasks taken back from agents that just said hello")
	require.Zero(t, refused.Load(), "accepts refused")
	require.Positive(t, done.Load())
}

// TestHelloTellsTheLeaseTimings: the hello answer carries the heartbeat
// interval, the stuck threshold and the progress interval that keeps well
// inside it (a third).
func TestHelloTellsTheLeaseTimings(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelWarning, fastLeases)
	a := dialTestAgent(t, h, "told", nil)
	status, body := a.request(broker.VerbHello, protocol.Hello{Session: a.session})
	require.Equal(t, 200, status)
	var reply protocol.HelloReply
	require.NoError(t, json.Unmarshal(body, &reply))
	require.Equal(t, protocol.HelloReply{Timings: protocol.Timings{HeartbeatIntervalMS: 100, StuckThresholdMS: 1000, ProgressIntervalMS: 333}}, reply)
}

// TestHeldAgentGetsNoWork: while a hello holds an agent, a pass matches
// nothing to it, however idle it is; on release it gets the task.
func TestHeldAgentGetsNoWork(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelWarning, func(*config.Hub) {})
	release := h.coord.Hold("held")
	newTestAgent(t, h, "held", nil, completeAtOnce)
	id := h.submit(t, `{"description":"wait for the hello"}`)
	matches, _ := h.coord.Schedule("test")
	require.Empty(t, matches)
	task, _, _ := h.Tasks().Get(id)
	require.Equal(t, domain.StatusQueued, task.Status)
	release()
	waitStatus(t, h, id, domain.StatusCompleted)
}
