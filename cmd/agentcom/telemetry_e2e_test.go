package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/messaging"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/telemetry"
)

// seen collects telemetry from a subscription.
type seen struct {
	mu     sync.Mutex
	events []telemetry.Event
	subs   []string
}

func (s *seen) add(subject string, data []byte) {
	var ev telemetry.Event
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.subs = append(s.events, ev), append(s.subs, subject)
}

func (s *seen) named(name string) []telemetry.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []telemetry.Event
	for i, ev := range s.events {
		if ev.Event == name && s.subs[i] == telemetry.SubjectPrefix+name {
			out = append(out, ev)
		}
	}
	return out
}

// TestTelemetryCatalogEndToEnd runs a scenario with a real hub and a real
// sidecar that reaches every catalog event, and checks each from an
// anonymous NATS subscription: subject, measurements (numbers) and
// metadata (ids are strings), and every state change of the agent, in
// order.
func TestTelemetryCatalogEndToEnd(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	h := startHubProcOn(t, dir, addr, fastAgents)
	obs, err := nats.Connect(h.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err, "an anonymous observer may connect")
	defer obs.Close()
	got := &seen{}
	_, err = obs.Subscribe("agent_com.>", func(m *nats.Msg) { got.add(m.Subject, m.Data) })
	require.NoError(t, err)
	require.NoError(t, obs.Flush())

	worker := startSidecar(t, h, "worker", `case "$AGENTCOM_TASK_DESCRIPTION" in fail*) echo nope >&2; exit 1;; `+
		`slow*) sleep 0.7;; esac; echo ok`, []string{"go"})
	h.waitTask(t, h.submitTask(t, `{"description":"slow and fine","needed_capabilities":["go"]}`), "completed", 30*time.Second)
	// Workflows: a dependent waits and is released, its goal completes; a
	// goal whose task fails for good fails.
	flow := h.batch(t, `{"ref":"a","description":"first","needed_capabilities":["go"],"goal_id":"g-ok"}`,
		`{"description":"then","needed_capabilities":["go"],"depends_on":["a"],"goal_id":"g-ok"}`,
		`{"description":"fail for good","needed_capabilities":["go"],"max_retries":0,"goal_id":"g-bad"}`)
	h.waitTask(t, flow[1], "completed", 30*time.Second)
	h.waitTask(t, flow[2], "dead_letter", 30*time.Second)
	require.Eventually(t, func() bool { return len(got.named("goal.completed")) == 1 && len(got.named("goal.failed")) == 1 },
		30*time.Second, 20*time.Millisecond)
	failing := h.submitTask(t, `{"description":"fail please","max_retries":1}`)
	h.waitTask(t, failing, "dead_letter", 30*time.Second)
	_, _, code := cli(t, h, "task", "retry", failing)
	require.Equal(t, 0, code)
	require.Eventually(t, func() bool { return len(got.named("task.dead_letter")) >= 2 }, 30*time.Second, 20*time.Millisecond)
	stuck := h.submitTask(t, `{"description":"nobody can","needed_capabilities":["quantum"]}`)
	_, _, code = cli(t, h, "task", "cancel", stuck)
	require.Equal(t, 0, code)

	out, _, _ := cli(t, h, "token", "create", "deaf")
	deaf := dialAgent(t, h.natsURL, "deaf", strings.TrimSpace(out), "deaf-only")
	defer deaf.Close()
	// Reservations: reserve, a peer's conflict, release, and an expiry
	// the peer's retries see.
	out, _, _ = cli(t, h, "token", "create", "peer")
	peer := dialAgent(t, h.natsURL, "peer", strings.TrimSpace(out))
	defer peer.Close()
	claim := `{"project":"repo","paths":["src/main.go"],"exclusive":true,"ttl_s":1}`
	status, body := agentRequest(t, deaf, "deaf", broker.VerbReserve, claim)
	require.Equal(t, http.StatusOK, status, body)
	status, _ = agentRequest(t, peer, "peer", broker.VerbReserve, claim)
	require.Equal(t, http.StatusConflict, status)
	var held protocol.Reservation
	require.NoError(t, json.Unmarshal([]byte(body), &held))
	status, body = agentRequest(t, deaf, "deaf", broker.VerbRelease, `{"project":"repo","id":"`+held.ID+`"}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body = agentRequest(t, deaf, "deaf", broker.VerbReserve, claim)
	require.Equal(t, http.StatusOK, status, body)
	require.Eventually(t, func() bool {
		status, _ := agentRequest(t, peer, "peer", broker.VerbReserve, claim)
		return status == http.StatusOK // once deaf's second reservation expired
	}, 30*time.Second, 100*time.Millisecond)
	// Messages: deaf writes to peer (pushed at once) more than its mailbox
	// holds (the first expire), peer reads its inbox and acknowledges it;
	// a message to an agent that is not connected is queued.
	var sent protocol.Message
	for i := range messaging.DefaultMailbox + 1 {
		status, body = agentRequest(t, deaf, "deaf", broker.VerbSend, fmt.Sprintf(`{"to":"peer","body":"the tests pass %d"}`, i))
		require.Equal(t, http.StatusOK, status, body)
		require.NoError(t, json.Unmarshal([]byte(body), &sent))
	}
	status, body = agentRequest(t, peer, "peer", broker.VerbInbox, `{}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body = agentRequest(t, peer, "peer", broker.VerbAck, fmt.Sprintf(`{"seq":%d}`, sent.Seq))
	require.Equal(t, http.StatusOK, status, body)
	status, body = agentRequest(t, deaf, "deaf", broker.VerbSend, `{"to":"ghost","body":"when you are back"}`)
	require.Equal(t, http.StatusOK, status, body)
	ignored := h.submitTask(t, `{"description":"for the deaf","needed_capabilities":["deaf-only"]}`)
	require.Eventually(t, func() bool { return len(got.named("agent.evict")) >= 1 }, 30*time.Second, 20*time.Millisecond)
	_, _, code = cli(t, h, "task", "cancel", ignored)
	require.Equal(t, 0, code)

	code, _, err = h.put("/api/admin/log-level", `{"level":"debug","module":"agents"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	_, errOut, code := cli(t, h, "config", "set", "agents.reconnect_grace", "40s")
	require.Equal(t, 0, code, errOut)
	// Alerts: any error line fires high_error_rate (the failing backup
	// below writes one); it is acknowledged, then cleared by a higher bar.
	for key, value := range map[string]string{"alerts.error_lines_per_hour": "0", "alerts.check_interval": "100ms"} {
		_, errOut, code = cli(t, h, "config", "set", key, value)
		require.Equal(t, 0, code, errOut)
	}
	// A viewer over its limit of one read a minute: rate.limited.
	out, _, _ = cli(t, h, "token", "create", "--role", "viewer", "peek")
	code, _, err = h.put("/api/admin/rate-limits/peek", `{"light":1}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []int{0, 2} { // then 2: the hub refused (429)
		_, errOut, code := cli(t, h, "task", "stats", "--token", strings.TrimSpace(out))
		require.Equal(t, want, code, errOut)
	}
	// Store spans: a backup that fails (its directory is a file: an
	// exception span), one that works, and a compaction.
	blocker := filepath.Join(dir, "backups")
	require.NoError(t, os.WriteFile(blocker, []byte("in the way"), 0o600))
	code, _, err = h.postJSON("/api/admin/backup", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, code)
	require.NoError(t, os.Remove(blocker))
	require.Eventually(t, func() bool { return len(got.named("alert.fire")) >= 1 }, 30*time.Second, 20*time.Millisecond)
	_, errOut, exit := cli(t, h, "alerts", "ack", "high_error_rate")
	require.Equal(t, 0, exit, errOut)
	_, errOut, exit = cli(t, h, "config", "set", "alerts.error_lines_per_hour", "1000")
	require.Equal(t, 0, exit, errOut)
	require.Eventually(t, func() bool { return len(got.named("alert.clear")) >= 1 }, 30*time.Second, 20*time.Millisecond)
	_, errOut, exit = cli(t, h, "backup")
	require.Equal(t, 0, exit, errOut)
	code, _, err = h.postJSON("/api/admin/compact", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		return len(got.named("store.backup.exception")) == 1 && len(got.named("store.backup.stop")) == 1 &&
			len(got.named("store.compaction.stop")) == 1
	}, 10*time.Second, 20*time.Millisecond)
	exc := got.named("store.backup.exception")[0]
	require.Equal(t, "error", exc.Metadata["kind"])
	require.NotEmpty(t, exc.Metadata["reason"])
	require.Contains(t, exc.Measurements, "duration_ms")
	require.Equal(t, got.named("store.backup.start")[0].Metadata["span_id"], exc.Metadata["span_id"])

	worker.terminate(t)
	require.Eventually(t, func() bool { return len(got.named("agent.disconnect")) >= 1 }, 10*time.Second, 20*time.Millisecond)

	// A restart rebuilds the projections, as a span (read back from the
	// TELEMETRY stream: it may end before the observer reconnects).
	h.terminate(t)
	again := startHubProcOn(t, dir, addr, fastAgents)
	rebuild := streamEvents(t, again, "projection.rebuild")
	require.Contains(t, rebuild, "projection.rebuild.start")
	require.Contains(t, rebuild, "projection.rebuild.stop")
	require.Contains(t, streamEvents(t, again, "store.snapshot_load"), "store.snapshot_load.stop")

	for _, spec := range telemetry.Catalog {
		// store.loss needs a damaged store (integrity_e2e_test.go), store.full a full
		// volume (TestFullDiskIsAStateNotAHang), agent.violation a misbehaving agent
		// (hub's TestDeniedPublishIsHubLine): those tests check them.
		if spec.Span() || spec.Name == "store.loss" || spec.Name == "store.full" || spec.Name == "agent.violation" {
			continue
		}
		evs := got.named(spec.Name)
		require.NotEmpty(t, evs, "no %s seen", spec.Name)
		requireShape(t, spec, evs)
	}
	requireTransitionChain(t, got.named("fsm.transition"), "worker")
}

// requireShape checks measurements are numbers present on every event, and
// each metadata key appears, ids as strings.
func requireShape(t *testing.T, spec telemetry.Spec, evs []telemetry.Event) {
	t.Helper()
	keys := map[string]bool{}
	for _, ev := range evs {
		for _, m := range spec.Measurements {
			_, ok := ev.Measurements[m]
			require.True(t, ok, "%s lacks measurement %s: %+v", spec.Name, m, ev)
		}
		for k, v := range ev.Metadata {
			keys[k] = true
			if k == "task_id" || k == "agent_id" || k == "request_id" || k == "reason" || k == "trigger" {
				require.IsType(t, "", v, "%s metadata %s", spec.Name, k)
			}
		}
	}
	for _, k := range spec.Metadata {
		require.True(t, keys[k], "%s never carried metadata %s", spec.Name, k)
	}
}

// requireTransitionChain checks an agent's transitions follow one another
// (each from is the previous to), from offline back to offline, through a
// full task cycle.
func requireTransitionChain(t *testing.T, evs []telemetry.Event, agent string) {
	t.Helper()
	var chain []string
	prev := "offline"
	for _, ev := range evs {
		if ev.Metadata["agent_id"] != agent {
			continue
		}
		from, to := ev.Metadata["from"].(string), ev.Metadata["to"].(string)
		require.Equal(t, prev, from, "transition %d of %s does not follow: %v", len(chain), agent, chain)
		chain = append(chain, from+">"+to)
		prev = to
	}
	require.Equal(t, "offline", prev, "%s ends offline: %v", agent, chain)
	for _, step := range []string{"offline>idle", "idle>assigned", "assigned>working", "working>idle", "idle>offline"} {
		require.Contains(t, chain, step)
	}
}

// streamEvents reads the TELEMETRY stream (admin token) for events whose
// name starts with prefix.
func streamEvents(t *testing.T, h *hubProc, prefix string) []string {
	t.Helper()
	nc, err := nats.Connect(h.natsURL, nats.Token(h.token))
	require.NoError(t, err)
	defer nc.Close()
	var names []string
	require.Eventually(t, func() bool {
		names = names[:0]
		err := client.On(nc, h.natsURL).TelemetryHistory(context.Background(), time.Now().Add(-time.Hour), prefix+".>",
			func(ev telemetry.Event) { names = append(names, ev.Event) })
		return err == nil && len(names) >= 2
	}, 10*time.Second, 50*time.Millisecond)
	return names
}

// TestAnonymousObserverWithNatsCLI: with no credentials, the nats CLI
// receives a submitted task's events, and can do nothing else.
func TestAnonymousObserverWithNatsCLI(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	natsBin := natsCLI(t)
	sub := exec.Command(natsBin, "--server", h.natsURL, "sub", "agent_com.task.>", "--count", "1", "--raw")
	var subOut strings.Builder
	sub.Stdout, sub.Stderr = &subOut, &subOut
	require.NoError(t, sub.Start())
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	// Submit until the subscriber has seen one (it needs a moment to subscribe).
	require.Eventually(t, func() bool {
		h.submitTask(t, `{"description":"watched"}`)
		select {
		case err := <-done:
			require.NoError(t, err, subOut.String())
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, 20*time.Second, 10*time.Millisecond)
	require.Contains(t, subOut.String(), `"event":"task.submit"`)

	run := func(args ...string) (string, error) {
		b, err := exec.Command(natsBin, append([]string{"--server", h.natsURL, "--timeout", "2s"}, args...)...).CombinedOutput()
		return string(b), err
	}
	for what, args := range map[string][]string{
		"publish a command":         {"pub", "agentcom.cmd.task.submit", `{"description":"x"}`},
		"publish telemetry":         {"pub", "agent_com.task.submit", "{}"},
		"subscribe to events":       {"sub", "agentcom.evt.>", "--count", "1"},
		"subscribe to agent pushes": {"sub", "agentcom.push.>", "--count", "1"},
		"call the JetStream API":    {"stream", "ls"},
	} {
		out, err := run(args...)
		require.Error(t, err, "%s was allowed: %s", what, out)
		require.Contains(t, strings.ToLower(out), "permission", what)
	}
}

// TestEventsCommand: agentcom events shows live events readably, --since
// reads back what the TELEMETRY stream kept, and a bad filter is named.
func TestEventsCommand(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())
	watch := exec.Command(bin, "events", "--filter", "task.*")
	watch.Env = append(os.Environ(), "AGENTCOM_HUB="+h.natsURL, "AGENTCOM_DATA_DIR="+h.dataDir)
	var live lockedLines
	var errOut strings.Builder
	watch.Stderr = &errOut
	stdout, err := watch.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, watch.Start())
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			live.add(sc.Text())
		}
	}()
	var id string
	for start := time.Now(); !strings.Contains(live.text(), "task_id="+id); time.Sleep(200 * time.Millisecond) {
		// agentcom events needs a moment to subscribe
		require.Less(t, time.Since(start), 20*time.Second, "stdout %q stderr %q", live.text(), errOut.String())
		id = h.submitTask(t, `{"description":"watched by agentcom events"}`)
	}
	line := lineWith(live.text(), "task_id="+id)
	require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  task\.submit +  queue_depth=\d+  priority=normal  request_id=\S+  submitted_by=admin  task_id=`, line)

	var kept string
	for start := time.Now(); !strings.Contains(kept, "task_id="+id); time.Sleep(100 * time.Millisecond) {
		// the batch with the event is stored just after the event goes out live
		require.Less(t, time.Since(start), 10*time.Second, "kept: %q", kept)
		out, errOut, code := cli(t, h, "events", "--since", "1m", "--filter", "task.submit")
		require.Equal(t, 0, code, errOut)
		kept = out
	}
	require.NotContains(t, kept, "fsm.transition")
	out, _, code := cli(t, h, "events", "--since", "1m", "--filter", "agent.>", "--json")
	require.Equal(t, 0, code)
	require.Empty(t, out, "no agent connected")

	anon := exec.Command(bin, "events", "--since", "1m", "--hub", h.natsURL)
	anon.Env = []string{"HOME=" + t.TempDir()}
	msg, err := anon.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(msg), "--since reads the TELEMETRY stream, which needs the admin token")

	_, stderr, code := cli(t, h, "events", "--filter", "task..submit")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, `invalid --filter "task..submit"`)
	_, stderr, code = cli(t, h, "events", "--since", "-5m")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, `invalid --since -5m0s`)
}

func lineWith(text, part string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, part) {
			return line
		}
	}
	return ""
}
