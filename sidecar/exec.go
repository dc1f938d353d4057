package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// job is one run of a task's work, as a worker sees it.
type job struct {
	a        protocol.Assignment
	woken    bool // wake mode: the agent was already woken by an earlier run
	log      logsink.Logger
	env      []string       // the relay's and inbox's variables
	setPGID  func(pgid int) // persist the process group of the work
	setWoken func()         // persist that the agent is awake
}

// worker does a task's work. run returns when the work ends or ctx does;
// in the latter case its outcome is ignored.
type worker interface {
	run(ctx context.Context, j job) outcome
	// finish cleans up after the outcome was reported.
	finish(a protocol.Assignment)
}

// execWorker runs the exec command once per task.
type execWorker struct{ cfg Config }

func (w execWorker) run(ctx context.Context, j job) outcome {
	stdin, err := json.Marshal(j.a)
	if err != nil {
		return failed(fmt.Sprintf("encode task: %v", err))
	}
	usageFile := w.usagePath(j.a.TaskID)
	_ = os.Remove(usageFile) // an earlier attempt's
	res, err := runProcess(ctx, procSpec{
		command: w.cfg.Exec, env: childEnv(append(append(taskEnv(j.a), j.env...), usageVar+"="+usageFile)...), stdin: stdin,
		timeout: w.cfg.TaskTimeout, grace: w.cfg.KillGrace, onStart: j.setPGID,
	})
	switch {
	case err != nil:
		return failed(err.Error())
	case res.stopped:
		return outcome{}
	case res.timedOut:
		return failed(fmt.Sprintf("timeout after %s", w.cfg.TaskTimeout))
	case res.err != nil:
		return failed(exitMessage(res))
	case res.truncated:
		return failed(domain.ResultTooLarge(res.stdoutLen))
	}
	out := succeeded(resultOf(res.stdout))
	out.Usage = j.readUsage(usageFile)
	return out
}

// usageVar names the file where an exec command may write what its work
// cost: {"input_tokens","output_tokens","cost_usd","model"}.
const usageVar = "AGENTCOM_USAGE_FILE"

// usagePath is where a task's command writes its usage.
func (w execWorker) usagePath(taskID string) string {
	return filepath.Join(w.cfg.StateDir, "usage-"+filepath.Base(taskID)+".json")
}

// readUsage reads the usage a command wrote, if it wrote one. A file that
// does not parse is logged and left out: the work itself succeeded.
func (j job) readUsage(path string) *protocol.Usage {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var u protocol.Usage
	if err := json.Unmarshal(b, &u); err != nil {
		j.log.Warning().Err(err).Str("file", path).Msg("usage file does not parse; completing without usage")
		return nil
	}
	return &u
}

// fitResult fails a success whose result the hub cannot take (over
// domain.MaxResultBytes as JSON), saying its size and the limit.
func fitResult(out outcome) outcome {
	if !out.Failed && len(out.Result) > domain.MaxResultBytes {
		return failed(domain.ResultTooLarge(len(out.Result)))
	}
	return out
}

func (w execWorker) finish(a protocol.Assignment) { _ = os.Remove(w.usagePath(a.TaskID)) }

// resultOf turns a command's stdout into a result: JSON as is, anything
// else as a JSON string without its trailing newline.
func resultOf(stdout []byte) json.RawMessage {
	if trimmed := bytes.TrimSpace(stdout); json.Valid(trimmed) {
		return json.RawMessage(trimmed)
	}
	b, _ := json.Marshal(strings.TrimSuffix(string(stdout), "\n"))
	return b
}

// dependenciesJSON is a task's dependencies with their results, as JSON
// ("[]" when none).
func dependenciesJSON(deps []protocol.DependencyResult) string {
	if len(deps) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(deps) // plain fields: it always encodes
	return string(b)
}

// taskEnv is the task as environment variables.
func taskEnv(a protocol.Assignment) []string {
	meta := "{}"
	if m := bytes.TrimSpace(a.Metadata); len(m) > 0 && string(m) != "null" {
		meta = string(m)
	}
	vars := [][2]string{
		{markerVar, a.TaskID},
		{"AGENTCOM_TASK_DESCRIPTION", a.Description},
		{generationVar, strconv.FormatUint(a.Generation, 10)},
		{"AGENTCOM_TASK_PRIORITY", a.Priority},
		{"AGENTCOM_TASK_METADATA", meta},
		{"AGENTCOM_REQUEST_ID", a.RequestID},
		{"AGENTCOM_TASK_DEPENDENCIES", dependenciesJSON(a.Dependencies)},
	}
	env := make([]string, 0, len(vars))
	for _, kv := range vars {
		env = append(env, kv[0]+"="+strings.ReplaceAll(kv[1], "\x00", ""))
	}
	return env
}
