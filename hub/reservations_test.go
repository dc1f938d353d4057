package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// Twenty agents reserve one file at once: exactly one gets it, the others
// are told who holds it; its expiry frees it; nobody but its holder can
// renew or release it, and no agent can even ask as another (the
// server's permissions refuse the subject).
func TestTwentyAgentsReserveOneFile(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := startHubClock(t, "", logsink.LevelInfo, clock.Now, func(cfg *config.Hub) {
		cfg.Agents.ReapAfter, cfg.Agents.StuckThreshold = 1000*time.Hour, 1000*time.Hour
	})
	fleet := make([]*testAgent, 20)
	for i := range fleet {
		fleet[i] = newTestAgent(t, h, fmt.Sprintf("a%02d", i), nil, ignore)
	}
	claim := protocol.Reserve{Project: "repo", Paths: []string{"src/main.go"}, Exclusive: true, TTLS: 60, Reason: "edit"}
	statuses, bodies := make([]int, len(fleet)), make([][]byte, len(fleet))
	var wg sync.WaitGroup
	for i, a := range fleet {
		wg.Go(func() { statuses[i], bodies[i] = a.request(broker.VerbReserve, claim) })
	}
	wg.Wait()
	winner := -1
	for i, st := range statuses {
		if st == http.StatusOK {
			require.Equal(t, -1, winner, "two agents hold the file: %v", statuses)
			winner = i
		}
	}
	require.NotEqual(t, -1, winner, "nobody got the file: %v", statuses)
	var held protocol.Reservation
	require.NoError(t, json.Unmarshal(bodies[winner], &held))
	for i, st := range statuses {
		if i == winner {
			continue
		}
		require.Equal(t, http.StatusConflict, st, string(bodies[i]))
		var c protocol.ReserveConflict
		require.NoError(t, json.Unmarshal(bodies[i], &c))
		require.Equal(t, fleet[winner].id, c.Conflicts[0].AgentID, "the refusal names the holder")
	}
	loser := fleet[(winner+1)%len(fleet)]
	ref := protocol.ReservationRef{Project: "repo", ID: held.ID}
	for _, verb := range []string{broker.VerbRenew, broker.VerbRelease} {
		st, _ := loser.request(verb, ref)
		require.Equal(t, http.StatusNotFound, st, "%s of another's reservation", verb)
	}
	_, err := loser.nc.Request(broker.AgentRequest(fleet[winner].id, broker.VerbRelease), []byte(`{}`), 500*time.Millisecond)
	require.Error(t, err, "an agent cannot publish as another")
	code, out := h.do(t, http.MethodGet, "/api/reservations?project=repo", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1.0, out["count"])

	// A shared reservation of a path under a glob the holder does not
	// hold is fine; one of the held file, even shared, is not.
	st, _ := loser.request(broker.VerbReserve, protocol.Reserve{Project: "repo", Paths: []string{"docs/*.md"}})
	require.Equal(t, http.StatusOK, st)
	st, _ = loser.request(broker.VerbReserve, protocol.Reserve{Project: "repo", Paths: []string{"src/**"}})
	require.Equal(t, http.StatusConflict, st, "src/** covers the held file")

	clock.Advance(61 * time.Second) // past the winner's TTL (the shared one had the default 10 minutes)
	st, body := loser.request(broker.VerbReserve, claim)
	require.Equal(t, http.StatusOK, st, "the expiry freed it: %s", body)
	st, _ = fleet[winner].request(broker.VerbRenew, ref)
	require.Equal(t, http.StatusNotFound, st, "an expired reservation cannot be renewed")
}

// A reserve that names no path, a bad project or a TTL out of range is
// refused with the field; an operator can release anyone's reservation.
func TestReservationsRefuseBadInputAndOperatorsRelease(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a := newTestAgent(t, h, "a1", nil, ignore)
	for body, field := range map[string]string{
		`{"project":"repo","paths":[]}`:                  "paths",
		`{"project":"re po","paths":["x"]}`:              "project",
		`{"project":"repo","paths":["x"],"ttl_s":90000}`: "ttl_s",
		`{"project":"repo","paths":["[x"]}`:              "paths[0]",
	} {
		var r protocol.Reserve
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		st, out := a.request(broker.VerbReserve, r)
		require.Equal(t, http.StatusUnprocessableEntity, st, body)
		require.Contains(t, string(out), field, body)
	}
	st, out := a.request(broker.VerbReserve, protocol.Reserve{Project: "repo", Paths: []string{"x"}, Exclusive: true})
	require.Equal(t, http.StatusOK, st)
	var held protocol.Reservation
	require.NoError(t, json.Unmarshal(out, &held))
	code, body := h.do(t, http.MethodDelete, "/api/reservations/repo/"+held.ID, h.token, "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = h.do(t, http.MethodGet, "/api/reservations", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 0.0, body["count"])
	code, _ = h.do(t, http.MethodGet, "/api/reservations?project=a..b", h.token, "")
	require.Equal(t, http.StatusUnprocessableEntity, code)
}
