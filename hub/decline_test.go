package hub

import (
	"sync"
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

// TestStaleBusyDeclineIdlesNoAgent: an agent declines as busy, holding
// only a task the hub saw completed. The hub's state says the agent is
// free: it tells the agent to let the old task go and gives it the task
// again at once, without a cooldown. A second such decline within the
// cooldown, and a busy decline that names no holding, do cool it down.
func TestStaleBusyDeclineIdlesNoAgent(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	var mu sync.Mutex
	var first *protocol.Assignment // the task the agent completes, then claims to hold
	pushes := 0
	work := func(a *testAgent, as protocol.Assignment) {
		mu.Lock()
		pushes++
		n, old := pushes, first
		if first == nil {
			first = &as
		}
		mu.Unlock()
		if n == 2 || n == 4 {
			a.call(broker.VerbDecline, protocol.Decline{TaskID: as.TaskID, Generation: as.Generation, Reason: protocol.DeclineBusy,
				Holding: []protocol.Holding{{TaskID: old.TaskID, Generation: old.Generation, Status: "working"}}})
			return
		}
		completeAtOnce(a, as)
	}
	a := newTestAgent(t, h, "stale-busy", nil, work)
	waitStatus(t, h, h.submit(t, `{"description":"first"}`), domain.StatusCompleted)

	second := h.submit(t, `{"description":"second"}`)
	waitStatus(t, h, second, domain.StatusCompleted)
	require.False(t, h.coord.CoolingDown(a.id), "a stale busy decline cools no agent down")
	got := a.assignments()
	require.Len(t, got, 3)
	require.Equal(t, []string{second, second}, []string{got[1].TaskID, got[2].TaskID}, "handed straight back")
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.aborts) == 1
	}, 10*time.Second, 10*time.Millisecond)
	a.mu.Lock()
	require.Equal(t, protocol.Abort{TaskID: got[0].TaskID, Generation: got[0].Generation, Reason: agents.ReasonNoLongerHeld}, a.aborts[0])
	a.mu.Unlock()

	third := h.submit(t, `{"description":"third"}`)
	require.Eventually(t, func() bool { return h.coord.CoolingDown(a.id) }, 10*time.Second, 10*time.Millisecond,
		"a second stale decline within the cooldown cools the agent down")
	waitStatus(t, h, third, domain.StatusQueued)

	b := newTestAgent(t, h, "plain-busy", nil, func(b *testAgent, as protocol.Assignment) {
		b.call(broker.VerbDecline, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation, Reason: "busy"})
	})
	require.Eventually(t, func() bool { return h.coord.CoolingDown(b.id) }, 10*time.Second, 10*time.Millisecond,
		"a busy decline that names no holding cools the agent down")
}
