package agents

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// reports handles a batched report (verb report): each outcome is its own
// command, sent to the writer together with the other tasks' so that they
// share its groups (one task's reports go one after another, in the
// order given), and each is answered on its own, in order. One log line covers the
// batch; the refusals among it are logged one by one.
func (c *Coordinator) reports(ctx context.Context, agentID string, rs protocol.Reports) (int, any) {
	if err := checkReports(rs); err != nil {
		return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed, Detail: err.Error()}
	}
	results := make([]protocol.ReportResult, len(rs.Reports))
	var wg sync.WaitGroup
	order := make([]int, len(rs.Reports))
	for i := range order {
		order[i] = i
	}
	for _, idx := range groupBy(order, func(i int) string { return rs.Reports[i].TaskID }) {
		wg.Go(func() { // one task's reports in the order given (an accept before its complete)
			for _, i := range idx {
				results[i] = c.reportResult(ctx, agentID, rs.Reports[i])
			}
		})
	}
	wg.Wait()
	refused := 0
	for _, res := range results {
		if res.Status != http.StatusOK {
			refused++
		}
	}
	c.log.Ctx(ctx).Info().Str("agent_id", agentID).Int("reports", len(results)).Int("refused", refused).Msg("agent reports")
	return http.StatusOK, protocol.ReportsReply{Results: results}
}

// reportResult runs one report of a batch and answers it.
func (c *Coordinator) reportResult(ctx context.Context, agentID string, r protocol.Report) protocol.ReportResult {
	res := protocol.ReportResult{TaskID: r.TaskID, Generation: r.Generation, Status: http.StatusOK}
	body := reportBody{Complete: protocol.Complete{TaskID: r.TaskID, Generation: r.Generation, Result: r.Result,
		Usage: r.Usage},
		Message: r.Message, Error: r.Error}
	t, err := c.reportOne(ctx, agentID, r.Verb, body)
	if err == nil {
		res.TaskStatus = string(t.Status)
		return res
	}
	c.log.Ctx(ctx).Info().Err(err).Str("agent_id", agentID).Str("task_id", r.TaskID).Str("verb", r.Verb).Msg("agent report refused")
	status, reply := c.result(nil, err)
	res.Status = status
	if e, ok := reply.(protocol.Error); ok {
		res.Error, res.Detail = e.Error, e.Detail
	}
	return res
}

// checkReports refuses a batch as a whole when it is empty, too long, or
// names a verb it cannot carry or an invalid task id.
func checkReports(rs protocol.Reports) error {
	if n := len(rs.Reports); n == 0 || n > protocol.MaxReports {
		return fmt.Errorf("reports holds %d outcomes; 1 to %d", n, protocol.MaxReports)
	}
	for i, r := range rs.Reports {
		switch r.Verb {
		case broker.VerbAccept, broker.VerbProgress, broker.VerbComplete, broker.VerbFail:
		default:
			return fmt.Errorf("reports[%d].verb %q: one of accept, progress, complete, fail", i, r.Verb)
		}
		if !domain.ValidTaskID(r.TaskID) {
			return fmt.Errorf("reports[%d].task_id %q is not a task id", i, r.TaskID)
		}
	}
	return nil
}
