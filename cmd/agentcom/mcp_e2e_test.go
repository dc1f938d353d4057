package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/sidecar"
)

const sidecarSocketVar = sidecar.SocketVar

// mcpSession runs `agentcom mcp` against the hub with the SDK's own
// client over stdio, with extra environment (a token file, say).
func mcpSession(t *testing.T, h *hubProc, env ...string) *sdk.ClientSession {
	t.Helper()
	cmd := exec.Command(bin, "mcp")
	cmd.Env = append(append(os.Environ(), "AGENTCOM_HUB="+h.natsURL, "AGENTCOM_DATA_DIR="+h.dataDir), env...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// callTool calls a tool and returns its structured content.
func callTool(t *testing.T, s *sdk.ClientSession, name string, args any) (map[string]any, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err)
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return out, res.IsError
}

// TestMCPOverStdioCallsTheHubsOperations drives `agentcom mcp` with the
// SDK's client: the tools are listed with their input schemas, a submit and
// a read go through, a refusal is a tool error with the hub's error word,
// and the hub times each call as an mcp.tool span whose request id the
// task's events carry.
func TestMCPOverStdioCallsTheHubsOperations(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	obs, err := nats.Connect(h.natsURL)
	require.NoError(t, err)
	defer obs.Close()
	spans := make(chan map[string]any, 64)
	_, err = obs.Subscribe("agent_com.mcp.tool.stop", func(m *nats.Msg) {
		var ev map[string]any
		if json.Unmarshal(m.Data, &ev) == nil {
			spans <- ev
		}
	})
	require.NoError(t, err)
	require.NoError(t, obs.Flush())

	s := mcpSession(t, h)
	tools, err := s.ListTools(context.Background(), nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		if tool.Name == "task_submit" {
			schema, err := json.Marshal(tool.InputSchema)
			require.NoError(t, err)
			require.Contains(t, string(schema), `"required":["description"]`)
			require.Contains(t, string(schema), `"depends_on"`)
		}
	}
	for _, want := range []string{"task_submit", "task_get", "task_list", "goal_get", "schedule_create", "store_health"} {
		require.True(t, slices.Contains(names, want), "no tool %s in %v", want, names)
	}

	sub, isErr := callTool(t, s, "task_submit", map[string]any{"description": "from an agent program", "goal_id": "mcp"})
	require.False(t, isErr, sub)
	id := sub["task_id"].(string)
	got, isErr := callTool(t, s, "task_get", map[string]any{"id": id})
	require.False(t, isErr, got)
	require.Equal(t, "from an agent program", got["description"])
	timeline, isErr := callTool(t, s, "task_timeline", map[string]any{"id": id})
	require.False(t, isErr, timeline)
	events := timeline["events"].([]any)
	require.Equal(t, "task.submitted", events[0].(map[string]any)["type"])
	goal, isErr := callTool(t, s, "goal_get", map[string]any{"id": "mcp"})
	require.False(t, isErr, goal)
	require.Equal(t, map[string]any{"queued": 1.0}, goal["counts"])
	missing, isErr := callTool(t, s, "task_get", map[string]any{"id": "task-0000000000000000"})
	require.True(t, isErr)
	require.Equal(t, "task_not_found", missing["error"])
	require.Equal(t, 404.0, missing["status"])
	bad, isErr := callTool(t, s, "task_submit", map[string]any{"description": ""})
	require.True(t, isErr)
	require.Equal(t, "validation_failed", bad["error"])

	seen := map[string]map[string]any{}
	require.Eventually(t, func() bool {
		for {
			select {
			case ev := <-spans:
				meta := ev["metadata"].(map[string]any)
				seen[meta["tool"].(string)+" "+meta["outcome"].(string)] = meta
			default:
				return seen["task_submit ok"] != nil && seen["task_get task_not_found"] != nil &&
					seen["task_submit validation_failed"] != nil
			}
		}
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, "admin", seen["task_submit ok"]["caller"])
	code, task, err := h.get("/api/tasks/" + id)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.Equal(t, seen["task_submit ok"]["request_id"], task["request_id"], "the span and the task share the call's request id")
	require.Equal(t, task["request_id"], events[0].(map[string]any)["request_id"], "and so does its event")
}

// spanLog keeps the mcp.tool spans an observer saw.
type spanLog struct {
	mu    sync.Mutex
	stops []map[string]any
}

// toolSpans watches the hub's mcp.tool spans.
func toolSpans(t *testing.T, h *hubProc) *spanLog {
	t.Helper()
	obs, err := nats.Connect(h.natsURL)
	require.NoError(t, err)
	t.Cleanup(obs.Close)
	l := &spanLog{}
	_, err = obs.Subscribe("agent_com.mcp.tool.stop", func(m *nats.Msg) {
		var ev map[string]any
		if json.Unmarshal(m.Data, &ev) == nil {
			l.mu.Lock()
			l.stops = append(l.stops, ev["metadata"].(map[string]any))
			l.mu.Unlock()
		}
	})
	require.NoError(t, err)
	require.NoError(t, obs.Flush())
	return l
}

func (l *spanLog) has(tool, caller string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.stops {
		if m["tool"] == tool && m["caller"] == caller && m["outcome"] == "ok" {
			return true
		}
	}
	return false
}

// TestMCPAgentWorksItsTaskThroughItsSidecar: `agentcom mcp` run beside a
// real sidecar (its relay socket in the environment, as the sidecar gives
// its task's command) serves the agent's tools: it reads the task it was
// given, reports progress for twice the stuck threshold without a reclaim,
// sends a message another agent reads, reserves a file another agent then
// cannot, and completes the task, whose events all carry the task's
// request id.
func TestMCPAgentWorksItsTaskThroughItsSidecar(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents) // stuck threshold 1.5s
	out, errOut, code := cli(t, h, "token", "create", "coder")
	require.Equal(t, 0, code, errOut)
	state := filepath.Join(t.TempDir(), "state")
	coder := startSidecarArgs(t, "coder", "sidecar", "--agent-id", "coder", "--token", strings.TrimSpace(out), "--hub", h.natsURL,
		"--exec", "sleep 60", "--state-dir", state, "--capability", "code", "--progress-interval", "10s")
	out, _, _ = cli(t, h, "token", "create", "peer")
	peer := dialAgent(t, h.natsURL, "peer", strings.TrimSpace(out))
	defer peer.Close()
	spans := toolSpans(t, h)
	id := h.submitTask(t, `{"description":"refactor the parser","needed_capabilities":["code"]}`)
	h.waitTask(t, id, "working", 30*time.Second)

	s := mcpSession(t, h, sidecarSocketVar+"="+filepath.Join(state, "sidecar.sock"))
	tools, err := s.ListTools(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, tools.Tools, 15)
	cur, isErr := callTool(t, s, "task_current", map[string]any{})
	require.False(t, isErr, cur)
	held := cur["tasks"].([]any)[0].(map[string]any)
	require.Equal(t, id, held["task_id"])
	gen := h.task(t, id).Generation
	read, err := s.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: "agentcom://task"})
	require.NoError(t, err)
	require.Contains(t, read.Contents[0].Text, id)

	beat := time.NewTicker(300 * time.Millisecond) // progress, paced, for twice the stuck threshold
	defer beat.Stop()
	for start := time.Now(); time.Since(start) < 3*time.Second; <-beat.C {
		res, isErr := callTool(t, s, "task_progress", map[string]any{"message": "parsing"})
		require.False(t, isErr, res)
	}
	require.Equal(t, "working", h.task(t, id).Status)
	require.Equal(t, gen, h.task(t, id).Generation, "no reclaim: the lease was renewed")

	sent, isErr := callTool(t, s, "message_send", map[string]any{"to": "peer", "body": "the parser is mine today"})
	require.False(t, isErr, sent)
	status, inbox := agentRequest(t, peer, "peer", broker.VerbInbox, `{}`)
	require.Equal(t, 200, status)
	require.Contains(t, inbox, "the parser is mine today")
	require.Contains(t, inbox, `"from":"coder"`)

	res, isErr := callTool(t, s, "files_reserve", map[string]any{"project": "repo", "paths": []string{"src/parser.go"}, "exclusive": true})
	require.False(t, isErr, res)
	status, _ = agentRequest(t, peer, "peer", broker.VerbReserve, `{"project":"repo","paths":["src/parser.go"],"exclusive":true}`)
	require.Equal(t, 409, status, "the coder holds it")

	other := h.submitTask(t, `{"description":"someone else's","needed_capabilities":["review"]}`)
	refused, isErr := callTool(t, s, "task_complete", map[string]any{"task_id": other, "result": 1})
	require.True(t, isErr, "not this agent's task")
	require.Equal(t, "task_not_held", refused["error"])
	require.Equal(t, "queued", h.task(t, other).Status, "nothing changed")

	done, isErr := callTool(t, s, "task_complete", map[string]any{"task_id": id, "result": map[string]any{"lines": 120}})
	require.False(t, isErr, done)
	task := h.waitTask(t, id, "completed", 10*time.Second)
	require.JSONEq(t, `{"lines":120}`, string(task.Result))
	again, isErr := callTool(t, s, "task_complete", map[string]any{"result": 1})
	require.True(t, isErr, "reported already")
	require.Equal(t, "task_not_held", again["error"])
	// The report ends the task: its command is stopped and the slot is free.
	next := h.submitTask(t, `{"description":"the next one","needed_capabilities":["code"]}`)
	h.waitTask(t, next, "working", 30*time.Second)
	require.Contains(t, coder.stdout(), "task reported through the relay")
	require.NotContains(t, coder.stdout(), "the hub took it back")
	for _, tool := range []string{"task_progress", "message_send", "files_reserve"} {
		require.Eventually(t, func() bool { return spans.has(tool, "coder") }, 15*time.Second, 20*time.Millisecond,
			"no mcp.tool span of %s", tool)
	}
	code, full, err := h.get("/api/tasks/" + id)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	rid := full["request_id"]
	for _, e := range full["history"].([]any) {
		require.Equal(t, rid, e.(map[string]any)["request_id"], "every step of the task carries its request id")
	}
}

// BenchmarkMCPToolOverStdio times tool calls through `agentcom mcp` over
// stdio against a hub process (store.sync always), one call at a time, from
// the client's call to its result: a read (task_get) and a write
// (task_submit). p50 and p99 of each run.
func BenchmarkMCPToolOverStdio(b *testing.B) {
	h := startHubProcOn(b, b.TempDir(), "127.0.0.1:0", nil)
	cmd := exec.Command(bin, "mcp")
	cmd.Env = append(os.Environ(), "AGENTCOM_HUB="+h.natsURL, "AGENTCOM_DATA_DIR="+h.dataDir)
	s, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).
		Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	require.NoError(b, err)
	defer s.Close()
	first, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: "task_submit",
		Arguments: map[string]any{"description": "read me"}})
	require.NoError(b, err)
	id := first.StructuredContent.(map[string]any)["task_id"]
	for _, c := range []struct {
		name, tool string
		args       map[string]any
	}{{"read", "task_get", map[string]any{"id": id}}, {"write", "task_submit", map[string]any{"description": "write me"}}} {
		b.Run(c.name, func(b *testing.B) {
			var lat []float64
			for b.Loop() {
				start := time.Now()
				res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: c.tool, Arguments: c.args})
				if err != nil || res.IsError {
					b.Fatalf("%s: %v %+v", c.tool, err, res)
				}
				lat = append(lat, float64(time.Since(start).Microseconds())/1000)
			}
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "p99-ms")
		})
	}
}
