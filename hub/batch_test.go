package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// batchOf is a batch submit body of n tasks.
func batchOf(n int, each func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = each(i)
	}
	return `{"tasks":[` + strings.Join(parts, ",") + `]}`
}

// A batch submit stores every task and answers each id in order; one
// invalid task refuses the batch and stores none.
func TestBatchSubmitIsAllOrNone(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	code, out := h.do(t, http.MethodPost, "/api/tasks/batch", h.token,
		batchOf(3, func(i int) string { return fmt.Sprintf(`{"description":"b%d","priority":"high"}`, i) }))
	require.Equal(t, http.StatusCreated, code, out)
	require.EqualValues(t, 3, out["count"])
	tasks := out["tasks"].([]any)
	for i, x := range tasks {
		id := x.(map[string]any)["task_id"].(string)
		task, _, ok := h.Tasks().Get(id)
		require.True(t, ok, id)
		require.Equal(t, fmt.Sprintf("b%d", i), task.Description, "answered in the order given")
	}

	code, out = h.do(t, http.MethodPost, "/api/tasks/batch", h.token,
		batchOf(3, func(i int) string {
			if i == 1 {
				return `{"description":"","priority":"sometimes"}`
			}
			return `{"description":"fine"}`
		}))
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	var fields []string
	for _, e := range out["errors"].([]any) {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	require.ElementsMatch(t, []string{"tasks[1].description", "tasks[1].priority"}, fields)
	require.Equal(t, 3, h.Tasks().Stats().Total, "nothing of the refused batch was stored")

	for body, want := range map[string]string{
		`{"tasks":[]}`: "0 tasks given, 1 to 1000",
		batchOf(ops.MaxBatchSubmit+1, func(int) string { return `{"description":"x"}` }): "1001 tasks given",
		`[1,2]`: "the body must be",
	} {
		code, out := h.do(t, http.MethodPost, "/api/tasks/batch", h.token, body)
		require.Equal(t, http.StatusUnprocessableEntity, code)
		raw, _ := json.Marshal(out)
		require.Contains(t, string(raw), want)
	}
}

// The same over NATS, with the admin token: 1,000 tasks in one request.
func TestBatchSubmitOverNATS(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	nc := dialN(t, h.NATSURL(), h.token, 1)[0]
	body := batchOf(ops.MaxBatchSubmit, func(i int) string { return fmt.Sprintf(`{"description":"n%d"}`, i) })
	resp, err := nc.Request(broker.Command(broker.CmdTaskSubmitBatch), []byte(body), 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, "201", resp.Header.Get(protocol.HeaderStatus), string(resp.Data))
	var out ops.SubmittedBatch
	require.NoError(t, json.Unmarshal(resp.Data, &out))
	require.Len(t, out.Tasks, ops.MaxBatchSubmit)
	require.Equal(t, ops.MaxBatchSubmit, h.Tasks().Stats().Total)
	i := 0
	h.Tasks().EachQueued(func(task *domain.Task) bool { // the queue keeps the batch's order
		require.Equal(t, fmt.Sprintf("n%d", i), task.Description)
		require.Equal(t, out.Tasks[i].TaskID, task.ID)
		i++
		return true
	})
	require.Equal(t, ops.MaxBatchSubmit, i)
	require.Less(t, h.svc.Stats().Commits, uint64(ops.MaxBatchSubmit/4), "the batch shares the writer's commits")
}

// BenchmarkSubmitBatch: batches of 1,000 tasks over NATS, one at a time;
// the figure is tasks/s.
func BenchmarkSubmitBatch(b *testing.B) {
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=1s", time.Second}} {
		b.Run(sync.name, func(b *testing.B) {
			h := startHubWith(b, "", sync.interval, logsink.LevelInfo)
			nc := dialN(b, h.NATSURL(), h.token, 1)[0]
			body := []byte(batchOf(ops.MaxBatchSubmit, func(i int) string { return string(benchBody) }))
			subject := broker.Command(broker.CmdTaskSubmitBatch)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				resp, err := nc.Request(subject, body, time.Minute)
				if err != nil || resp.Header.Get(protocol.HeaderStatus) != "201" {
					b.Fatalf("batch submit: %v %s", err, resp.Data)
				}
			}
			b.ReportMetric(float64(b.N*ops.MaxBatchSubmit)/time.Since(start).Seconds(), "tasks/s")
			reportGroups(b, h)
		})
	}
}
