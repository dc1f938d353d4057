package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentcom/agentcom/protocol"
)

// errTaskTimeout ends a task's work after task_timeout.
var errTaskTimeout = errors.New("task timeout")

// wakeWorker wakes an agent with the wake command, then waits for the
// agent's result file.
type wakeWorker struct{ cfg Config }

func (w wakeWorker) run(ctx context.Context, j job) outcome {
	if w.cfg.TaskTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, w.cfg.TaskTimeout, errTaskTimeout)
		defer cancel()
	}
	out, ok := w.wakeAndWait(ctx, j)
	if !ok && errors.Is(context.Cause(ctx), errTaskTimeout) {
		return failed(fmt.Sprintf("timeout after %s", w.cfg.TaskTimeout))
	}
	return out
}

// wakeAndWait returns ok false when ctx ended first.
func (w wakeWorker) wakeAndWait(ctx context.Context, j job) (outcome, bool) {
	if !j.woken {
		// A file left from an earlier assignment of the task is stale.
		if err := os.Remove(w.resultPath(j.a.TaskID)); err == nil {
			j.log.Info().Msg("removed a stale result file before waking")
		}
		out, ok, woke := w.wake(ctx, j)
		if !ok || !woke {
			return out, ok
		}
		j.setWoken()
	}
	return w.await(ctx, j)
}

// wake runs the wake command until it succeeds, with the configured
// retries. woke is false when every attempt failed.
func (w wakeWorker) wake(ctx context.Context, j job) (out outcome, ok, woke bool) {
	attempts := len(w.cfg.WakeRetryDelays) + 1
	spec := procSpec{
		command: expandWake(w.cfg.Wake, j.a), env: childEnv(append(taskEnv(j.a), j.env...)...),
		timeout: w.cfg.WakeTimeout, grace: w.cfg.KillGrace,
	}
	for i := range attempts {
		if i > 0 && !sleep(ctx, w.cfg.WakeRetryDelays[i-1]) {
			return outcome{}, false, false
		}
		res, err := runProcess(ctx, spec)
		switch {
		case ctx.Err() != nil:
			return outcome{}, false, false
		case err == nil && res.err == nil && !res.timedOut:
			j.log.Info().Int("attempt", i+1).Msg("agent woken")
			return outcome{}, true, true
		}
		msg := wakeError(res, err, w.cfg.WakeTimeout)
		j.log.Warning().Int("attempt", i+1).Int("attempts", attempts).Str("error", msg).Msg("wake command failed")
	}
	return failed(fmt.Sprintf("wake_failed_after_%d_attempts", attempts)), true, false
}

func wakeError(res procResult, err error, timeout time.Duration) string {
	switch {
	case err != nil:
		return err.Error()
	case res.timedOut:
		return fmt.Sprintf("timeout after %s", timeout)
	}
	return exitMessage(res)
}

// await polls for the result file. A file that does not parse is read
// again until it has not changed for a few polls: it may be half written.
func (w wakeWorker) await(ctx context.Context, j job) (outcome, bool) {
	path := w.resultPath(j.a.TaskID)
	settle := 4 * w.cfg.ResultPoll
	tick := time.NewTicker(w.cfg.ResultPoll)
	defer tick.Stop()
	j.log.Info().Str("path", path).Msg("waiting for the result file")
	for {
		if out, done := readResult(path, settle); done {
			return out, true
		}
		select {
		case <-ctx.Done():
			return outcome{}, false
		case <-tick.C:
		}
	}
}

// resultDoc is what a woken agent writes.
type resultDoc struct {
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Usage  *protocol.Usage `json:"usage"`
	Error  json.RawMessage `json:"error"`
	Reason json.RawMessage `json:"reason"`
}

// readResult reads the result file; done is false while there is none, or
// while an unparseable one may still be being written.
func readResult(path string, settle time.Duration) (out outcome, done bool) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return outcome{}, false
	}
	b, err := os.ReadFile(path)
	if err == nil {
		var doc resultDoc
		if err = json.Unmarshal(b, &doc); err == nil {
			return interpret(doc), true
		}
	}
	if info != nil && time.Since(info.ModTime()) < settle {
		return outcome{}, false
	}
	return failed(fmt.Sprintf("unparseable result file %s: %v", filepath.Base(path), err)), true
}

func interpret(doc resultDoc) outcome {
	if doc.Status == "success" {
		out := succeeded(doc.Result)
		out.Usage = doc.Usage
		return out
	}
	for _, raw := range []json.RawMessage{doc.Error, doc.Reason} {
		if msg := text(raw); msg != "" {
			return failed(msg)
		}
	}
	return failed(fmt.Sprintf("result status %q", doc.Status))
}

// text is a JSON string's value, or any other JSON value as written.
func text(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// finish deletes the reported result file.
func (w wakeWorker) finish(a protocol.Assignment) {
	_ = os.Remove(w.resultPath(a.TaskID))
}

func (w wakeWorker) resultPath(taskID string) string {
	return filepath.Join(w.cfg.ResultsDir, filepath.Base(taskID)+".json")
}

// expandWake fills the wake template's placeholders with shell-quoted
// values; a placeholder is one shell word and must not be quoted again.
func expandWake(tmpl string, a protocol.Assignment) string {
	taskJSON, _ := json.Marshal(a)
	return strings.NewReplacer(
		"${TASK_ID}", shellQuote(a.TaskID),
		"${TASK_JSON}", shellQuote(string(taskJSON)),
		"${TASK_DESCRIPTION}", shellQuote(a.Description),
	).Replace(tmpl)
}

// shellQuote makes s one single-quoted sh word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
