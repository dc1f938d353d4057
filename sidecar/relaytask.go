package sidecar

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// RelayTask is the relay's own verb that lists the tasks the sidecar holds
// (the agent's current work), answered without the hub.
const RelayTask = "task"

// errReported ends a task whose command reported it through the relay: the
// work is done, the command is stopped, nothing is reported twice.
var errReported = errors.New("the task was reported through the relay")

// HeldTask is a task the sidecar holds, as the relay's task verb lists it.
type HeldTask struct {
	protocol.Assignment
	Status string `json:"status"`
}

// relayReport is a task command's progress, complete or fail: the task is
// named, the sidecar adds the generation it holds.
type relayReport struct {
	TaskID  string          `json:"task_id"`
	Message string          `json:"message,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Usage   *protocol.Usage `json:"usage,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// heldTasks lists the tasks being worked on.
func (s *Sidecar) heldTasks() []HeldTask {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []HeldTask{}
	for _, t := range s.tasks {
		if !t.dropping && t.rec.Outcome == nil {
			out = append(out, HeldTask{Assignment: t.a, Status: t.rec.Status})
		}
	}
	return out
}

// held is the task the sidecar works on by id (the only one, for "").
func (s *Sidecar) held(id string) *task {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *task
	for _, t := range s.tasks {
		if t.dropping || t.rec.Outcome != nil || (id != "" && t.a.TaskID != id) {
			continue
		}
		if found != nil {
			return nil // "" with several: say which
		}
		found = t
	}
	return found
}

// serveTaskVerb answers the task verbs: the held tasks, or one task's
// progress, complete or fail sent with its generation and request id. A
// complete or fail through the relay is the task's report: the sidecar
// then stops the command and reports nothing more.
func (s *Sidecar) serveTaskVerb(w http.ResponseWriter, tool, verb string, data []byte) {
	if verb == RelayTask {
		writeRelay(w, http.StatusOK, map[string]any{"tasks": s.heldTasks()})
		return
	}
	var r relayReport
	if len(data) > 0 && json.Unmarshal(data, &r) != nil {
		writeRelay(w, http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed,
			Detail: "the body must be a JSON object naming task_id"})
		return
	}
	t := s.held(r.TaskID)
	if t == nil {
		writeRelay(w, http.StatusNotFound, protocol.Error{Error: "task_not_held",
			Detail: "the sidecar works on no such task (name task_id when it holds several)"})
		return
	}
	if verb == broker.VerbProgress {
		err := s.request(WithTool(t.ctx, tool), verb, t.a.RequestID, protocol.Progress{TaskID: t.a.TaskID,
			Generation: t.a.Generation, Message: r.Message}, nil)
		s.relayAnswer(w, err, map[string]any{"status": "ok", "task_id": t.a.TaskID})
		return
	}
	s.relayReport(w, t, verb, r)
}

// relayReport reports a task for its command: the outcome is claimed (one
// claim wins; kept, so a crash reports it at the next start), then sent.
// The hub's refusal is answered as it came and the claim let go, so the
// command may report again; a report not delivered is the runner's to
// finish. Then the command is stopped: the task is done.
func (s *Sidecar) relayReport(w http.ResponseWriter, t *task, verb string, r relayReport) {
	out := succeeded(r.Result)
	out.Usage = r.Usage
	if verb == broker.VerbFail {
		out = failed(r.Error)
	}
	if !s.claim(t, out) {
		writeRelay(w, http.StatusNotFound, protocol.Error{Error: "task_not_held", Detail: "the task was reported already"})
		return
	}
	rv, body := reportOf(t.a, out)
	err := s.send(t, rv, body)
	if status, _ := hubCode(err); err != nil && definite(err) {
		s.update(t, func(rec *record) { rec.Outcome = nil })
		s.relayAnswer(w, err, nil)
		t.log.Warning().Err(err).Int("status", status).Msg("report through the relay refused")
		return
	}
	if err == nil {
		s.mu.Lock()
		t.reported = true
		s.mu.Unlock()
	}
	time.AfterFunc(relayStopGrace, func() { t.stopCommand(errReported) }) // it hears the answer first
	if err != nil {
		writeRelay(w, http.StatusServiceUnavailable, protocol.Error{Error: "hub_unreachable",
			Detail: "the report is kept and will be sent: " + err.Error()})
		return
	}
	t.log.Notice().Str("verb", rv).Msg("task reported through the relay")
	writeRelay(w, http.StatusOK, map[string]any{"status": "reported", "task_id": t.a.TaskID, "verb": rv})
}

// claim sets t's outcome unless one is set: checked and set in one step,
// so of two reports one wins.
func (s *Sidecar) claim(t *task, out outcome) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.dropping || t.rec.Outcome != nil {
		return false
	}
	t.rec.Outcome = &out
	if err := s.saveLocked(); err != nil {
		t.log.Error().Err(err).Msg("cannot persist state")
	}
	return true
}

// relayAnswer writes ok, or the hub's refusal of err.
func (s *Sidecar) relayAnswer(w http.ResponseWriter, err error, ok any) {
	if err == nil {
		writeRelay(w, http.StatusOK, ok)
		return
	}
	if status, code := hubCode(err); status > 0 {
		writeRelay(w, status, protocol.Error{Error: code, Detail: err.Error()})
		return
	}
	writeRelay(w, http.StatusServiceUnavailable, protocol.Error{Error: "hub_unreachable", Detail: err.Error()})
}
