package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/api"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// probe is one call of an operation, sent the same way over both
// transports: params in the path or the body, query in the query string
// or the body, and the answer both must give.
type probe struct {
	params map[string]string
	query  url.Values
	body   string
	status int
	code   string // the error code of an error answer
}

// probes has a call for every operation of the table: a bad input where
// the operation takes one, else a plain read. An operation added without
// one fails TestTransportsServeTheTable.
var probes = map[string]probe{
	ops.OpHealth.Name:          {status: 200},
	ops.OpOpenAPI.Name:         {status: 200},
	ops.OpSchemas.Name:         {status: 200},
	ops.OpTaskSubmit.Name:      {body: `{"description":1}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpTaskSubmitBatch.Name: {body: `{"tasks":[{"description":1}]}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpTaskList.Name:        {query: url.Values{"status": {"sleeping"}}, status: 422, code: protocol.CodeValidationFailed},
	ops.OpTaskGet.Name:         {params: map[string]string{"id": "task-missing"}, status: 404, code: "task_not_found"},
	ops.OpTaskStats.Name:       {status: 200},
	ops.OpTaskDeadLetter.Name:  {status: 200},
	ops.OpTaskRetry.Name:       {params: map[string]string{"id": "task-missing"}, status: 404, code: "task_not_found"},
	ops.OpTaskCancel.Name: {params: map[string]string{"id": "task-missing"}, body: `{"reason":"x"}`,
		status: 404, code: "task_not_found"},
	ops.OpAgentList.Name:    {status: 200},
	ops.OpAgentStates.Name:  {status: 200},
	ops.OpAgentGet.Name:     {params: map[string]string{"agent_id": "nobody"}, status: 404, code: "agent_not_found"},
	ops.OpTokenCreate.Name:  {body: `{"agent_id":"a b"}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpTokenList.Name:    {status: 200},
	ops.OpTokenRevoke.Name:  {params: map[string]string{"agent_id": "nobody"}, status: 404, code: "token_not_found"},
	ops.OpLogLevelGet.Name:  {status: 200},
	ops.OpLogLevelSet.Name:  {body: `{"level":"loud"}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpStoreCompact.Name: {status: 200},
	ops.OpStoreBackup.Name:  {status: 200},
	ops.OpStoreRestore.Name: {body: `{"file":""}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpStoreHealth.Name:  {status: 200},
	ops.OpTelemetryHistory.Name: {query: url.Values{"filter": {"task.*"}}, status: 422,
		code: protocol.CodeValidationFailed},
	ops.OpAgentReset.Name: {params: map[string]string{"agent_id": "nobody"}, status: 404, code: "agent_not_found"},
	ops.OpPushTask.Name:   {body: `{"agent_id":"nobody","description":"x"}`, status: 404, code: "agent_not_found"},
	ops.OpUsage.Name: {query: url.Values{"since": {"yesterday"}}, status: 422,
		code: protocol.CodeValidationFailed},
	ops.OpRateLimitList.Name: {status: 200},
	ops.OpRateLimitSet.Name: {params: map[string]string{"name": "dash"}, body: `{"heavy":0}`, status: 422,
		code: protocol.CodeValidationFailed},
	ops.OpRateLimitClear.Name: {params: map[string]string{"name": "nobody"}, status: 404, code: "rate_limit_not_found"},
	ops.OpRateLimitExempt.Name: {params: map[string]string{"name": "a b"}, status: 422,
		code: protocol.CodeValidationFailed},
	ops.OpRateLimitUnexempt.Name: {params: map[string]string{"name": "nobody"}, status: 404,
		code: "rate_limit_not_found"},
	ops.OpConfigList.Name: {status: 200},
	ops.OpConfigGet.Name:  {params: map[string]string{"key": "agents.nope"}, status: 404, code: "setting_not_found"},
	ops.OpConfigSet.Name: {params: map[string]string{"key": "agents.stuck_threshold"}, body: `{"value":"soon"}`,
		status: 422, code: protocol.CodeValidationFailed},
	ops.OpConfigReset.Name:     {params: map[string]string{"key": "agents.nope"}, status: 404, code: "setting_not_found"},
	ops.OpOnboard.Name:         {body: `{"agent_id":"a b"}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpMetricsText.Name:     {status: 200},
	ops.OpMetricsGet.Name:      {status: 200},
	ops.OpAlertList.Name:       {status: 200},
	ops.OpAlertAck.Name:        {params: map[string]string{"rule": "moon_full"}, status: 404, code: "alert_not_found"},
	ops.OpLogTail.Name:         {query: url.Values{"lines": {"5000"}}, status: 422, code: protocol.CodeValidationFailed},
	ops.OpReservationList.Name: {query: url.Values{"project": {"repo"}}, status: 200},
	ops.OpReservationRelease.Name: {params: map[string]string{"project": "repo", "id": "res-none"}, status: 404,
		code: "reservation_not_found"},
	ops.OpMessageSend.Name:   {body: `{"to":"a b","body":"hi"}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpMessageList.Name:   {query: url.Values{"limit": {"500"}}, status: 422, code: protocol.CodeValidationFailed},
	ops.OpThreadGet.Name:     {params: map[string]string{"id": "msg-none"}, status: 404, code: "message_not_found"},
	ops.OpChannelList.Name:   {status: 200},
	ops.OpChannelCreate.Name: {body: `{"name":"###"}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpChannelGet.Name:    {params: map[string]string{"channel": "nowhere"}, status: 404, code: "channel_not_found"},
	ops.OpChannelHistory.Name: {params: map[string]string{"channel": "nowhere"}, status: 404,
		code: "channel_not_found"},
	ops.OpSubscriptions.Name: {params: map[string]string{"agent_id": "nobody"}, status: 200},
	ops.OpTaskTimeline.Name:  {params: map[string]string{"id": "task-missing"}, status: 404, code: "task_not_found"},
	ops.OpGoalList.Name:      {status: 200},
	ops.OpGoalCreate.Name:    {body: `{"title":""}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpGoalGet.Name:       {params: map[string]string{"id": "goal-none"}, status: 404, code: "goal_not_found"},
	ops.OpGoalCancel.Name: {params: map[string]string{"id": "goal-none"}, body: `{"reason":"x"}`, status: 404,
		code: "goal_not_found"},
	ops.OpScheduleList.Name:   {status: 200},
	ops.OpScheduleCreate.Name: {body: `{"name":"a b"}`, status: 422, code: protocol.CodeValidationFailed},
	ops.OpScheduleDelete.Name: {params: map[string]string{"name": "none"}, status: 404, code: "schedule_not_found"},
}

// httpPath is op's path with the probe's parameters and query.
func (p probe) httpPath(op ops.Op) string {
	path := op.Path
	for k, v := range p.params {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	if len(p.query) > 0 {
		path += "?" + p.query.Encode()
	}
	return path
}

// natsBody is the probe's body with its parameters and query as fields.
func (p probe) natsBody(t *testing.T) []byte {
	fields := map[string]any{}
	if p.body != "" {
		require.NoError(t, json.Unmarshal([]byte(p.body), &fields))
	}
	for k, v := range p.params {
		fields[k] = v
	}
	for k := range p.query {
		fields[k] = p.query.Get(k)
	}
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	return b
}

// natsDo sends a command and returns the status and body of its reply.
func natsDo(t *testing.T, nc *nats.Conn, subject string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := nc.Request(subject, body, 10*time.Second)
	require.NoError(t, err, subject)
	status, err := strconv.Atoi(resp.Header.Get(protocol.HeaderStatus))
	require.NoError(t, err)
	var out map[string]any
	var text string
	if json.Unmarshal(resp.Data, &text) == nil { // the Prometheus text, as a JSON string
		return status, map[string]any{"text": text}
	}
	require.NoError(t, json.Unmarshal(resp.Data, &out), string(resp.Data))
	return status, out
}

func TestTransportsServeTheTable(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	nc, err := nats.Connect(h.NATSURL(), nats.Token(h.token))
	require.NoError(t, err)
	defer nc.Close()
	for _, op := range ops.All {
		p, ok := probes[op.Name]
		require.True(t, ok, "operation %s has no probe: add one to probes", op.Name)
		hs, hb := h.do(t, op.Method, p.httpPath(op), h.token, p.body)
		ns, nb := natsDo(t, nc, op.Subject(), p.natsBody(t))
		require.NotEqual(t, http.StatusMethodNotAllowed, hs, op.Pattern())
		require.False(t, hs == 404 && hb["error"] == protocol.CodeNotFound, "%s is not routed", op.Pattern())
		require.NotEqual(t, "unknown_command", nb["error"], op.Name)
		require.Equal(t, p.status, hs, "%s over HTTP: %v", op.Name, hb)
		require.Equal(t, p.status, ns, "%s over NATS: %v", op.Name, nb)
		require.Equal(t, p.code, errCode(hb), "%s over HTTP", op.Name)
		require.Equal(t, p.code, errCode(nb), "%s over NATS", op.Name)
	}
	for name := range probes {
		_, ok := ops.ByName(name)
		require.True(t, ok, "probe of %s, which is not in the table", name)
	}
}

func errCode(body map[string]any) string {
	s, _ := body["error"].(string)
	return s
}

// patterns are the table's mux patterns, and the catch-all.
func patterns(table []ops.Op) []string {
	out := []string{"/"}
	for _, op := range table {
		out = append(out, op.Pattern())
	}
	slices.Sort(out)
	return out
}

func TestRoutesAndCommandsAreExactlyTheTable(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	got, names, err := h.api.Served()
	require.NoError(t, err)
	want := slices.Sorted(slices.Values(append(patterns(ops.All), api.ExtraRoutes...)))
	require.Equal(t, want, got, "the HTTP mux serves a route outside the table (and its extra routes), or lacks one")
	want = nil
	for _, op := range ops.All {
		want = append(want, op.Name)
	}
	slices.Sort(want)
	require.Equal(t, want, names, "the NATS commands are not the table")
	// What is not in the table is not served: the catch-all answers.
	code, out := h.do(t, http.MethodDelete, "/api/tasks", h.token, "")
	require.Equal(t, http.StatusNotFound, code, out)
	require.Equal(t, protocol.CodeNotFound, out["error"])
	nc, err := nats.Connect(h.NATSURL(), nats.Token(h.token))
	require.NoError(t, err)
	defer nc.Close()
	status, body := natsDo(t, nc, broker.CommandPrefix+"health", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "unknown_command", body["error"])
}

func TestOpenAPIListsTheTable(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	code, doc := h.do(t, http.MethodGet, "/api/openapi.json", "", "")
	require.Equal(t, http.StatusOK, code)
	c := dialHub(t, h, h.token)
	var overNATS map[string]any
	require.NoError(t, c.Do(t.Context(), ops.OpOpenAPI, nil, &overNATS))
	require.Equal(t, doc, overNATS)
	require.Equal(t, "3.1.0", doc["openapi"])
	paths := doc["paths"].(map[string]any)
	var got []string
	for path, item := range paths {
		for method := range item.(map[string]any) {
			got = append(got, strings.ToUpper(method)+" "+path)
		}
	}
	require.Equal(t, patterns(ops.All)[1:], slices.Sorted(slices.Values(got)))
	for _, op := range ops.All {
		requireDocumented(t, paths[op.Path].(map[string]any)[strings.ToLower(op.Method)].(map[string]any), op)
	}
}

// requireDocumented checks one operation of the document against op.
func requireDocumented(t *testing.T, doc map[string]any, op ops.Op) {
	t.Helper()
	require.Equal(t, op.Name, doc["operationId"])
	responses := doc["responses"].(map[string]any)
	for _, a := range op.Answers {
		r := responses[strconv.Itoa(a.Status)].(map[string]any)
		contentType := "application/json"
		if a.Type == reflect.TypeFor[ops.Text]() {
			contentType = ops.TextFormat // the Prometheus exposition
		}
		require.Contains(t, r["content"].(map[string]any)[contentType], "schema", op.Name)
	}
	for _, code := range op.HTTPErrors() {
		r := responses[strconv.Itoa(code)].(map[string]any)
		schema := r["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		require.Equal(t, map[string]any{"$ref": "#/components/schemas/ErrorBody"}, schema, "%s %d", op.Name, code)
	}
	require.Len(t, responses, len(op.Answers)+len(op.HTTPErrors()), op.Name)
	_, hasBody := doc["requestBody"]
	require.Equal(t, op.Request != nil, hasBody, op.Name)
}

func TestTelemetryHistoryOverHTTPIsTheNATSAnswer(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	code, _ := h.do(t, http.MethodPut, "/api/admin/log-level", h.token, `{"level":"info","module":"agents"}`)
	require.Equal(t, http.StatusOK, code)
	path := "/api/telemetry/history?" + url.Values{"since": {since}, "filter": {"log.level_change"}}.Encode()
	var page map[string]any
	require.Eventually(t, func() bool {
		code, page = h.do(t, http.MethodGet, path, h.token, "")
		return code == http.StatusOK && len(page["events"].([]any)) == 1
	}, 10*time.Second, 20*time.Millisecond)
	c := dialHub(t, h, h.token)
	var overNATS map[string]any
	require.NoError(t, c.Do(t.Context(), ops.OpTelemetryHistory, map[string]string{"since": since, "filter": "log.level_change"}, &overNATS))
	require.Equal(t, page, overNATS)

	code, out := h.do(t, http.MethodGet, path, "", "")
	require.Equal(t, http.StatusUnauthorized, code, out)
	code, out = h.do(t, http.MethodGet, "/api/telemetry/history?since=yesterday", h.token, "")
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, "since", fieldOf(out))
}
