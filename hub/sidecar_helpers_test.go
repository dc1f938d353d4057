package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
	"github.com/agentcom/agentcom/sidecar"
)

// startSidecar runs the real sidecar code in-process against h, as agent
// id, running command for every task; edit changes its config before it
// starts. It is stopped when the test ends.
func startSidecar(tb testing.TB, h *testHub, id, command string, edit func(*sidecar.Config)) *sidecar.Sidecar {
	tb.Helper()
	token, _, err := h.tokens.CreateAgent(context.Background(), id)
	require.NoError(tb, err)
	cfg := sidecar.Config{AgentID: id, Token: token, Hub: h.NATSURL(), Exec: command, StateDir: tb.TempDir()}
	if edit != nil {
		edit(&cfg)
	}
	logs := &logtest.Buffer{}
	s := sidecar.New(cfg, logsink.New(logsink.NewOutput(logs), "sidecar-"+id, logsink.LevelWarning))
	require.NoError(tb, s.Start(context.Background()))
	tb.Cleanup(s.Stop)
	return s
}

// reclaims counts the task.reclaimed events in h's stream by reason; a
// decline counts under "declined: <its reason>".
func reclaims(tb testing.TB, h *testHub) map[string]int {
	tb.Helper()
	out := map[string]int{}
	err := h.Store().Read(context.Background(), broker.ReadOpts{}, func(env domain.Envelope) error {
		if r, ok := env.Data.(domain.TaskReclaimed); ok {
			out[r.Reason]++
		}
		return nil
	})
	require.NoError(tb, err)
	return out
}

// declines is how many of counts are declines.
func declines(counts map[string]int) int {
	n := 0
	for reason, c := range counts {
		if strings.HasPrefix(reason, "declined:") {
			n += c
		}
	}
	return n
}

// waitAllCompleted waits until n tasks are completed, failing after within.
func waitAllCompleted(tb testing.TB, h *testHub, n int, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for h.Tasks().Stats().ByStatus["completed"] < n {
		if time.Now().After(deadline) {
			tb.Fatalf("only %d of %d tasks completed after %s", h.Tasks().Stats().ByStatus["completed"], n, within)
		}
		time.Sleep(time.Millisecond)
	}
}
