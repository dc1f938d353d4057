package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentcom/agentcom/protocol/ops"
)

// sidecarPoll is how often the hub is asked whether the sidecars are
// online, and how many tasks are completed.
const sidecarPoll = 10 * time.Millisecond

// sidecarStopWait bounds a sidecar's stop after SIGTERM before it is killed.
const sidecarStopWait = 15 * time.Second

// sidecars are real `agentcom sidecar` processes running a no-op command
// (`true`) for each task. Their pushes are out of sight, so they are done
// when the hub's completed count has risen by the run's tasks: against a
// running hub, other work counts too.
type sidecars struct {
	o        Options
	t        *target
	dir      string // token files and state directories
	names    []string
	baseline int // completed before the run
	done     atomic.Int64
	procs    []*proc
	exited   chan error // a sidecar that ended before stop
	stopping atomic.Bool
}

// newSidecars creates each agent's token, in a file only the bench reads.
func newSidecars(ctx context.Context, o Options, t *target, names []string) (*sidecars, error) {
	dir, err := os.MkdirTemp(o.Dir, "agentcom-bench-sidecars-")
	if err != nil {
		return nil, fmt.Errorf("create sidecar dir: %w", err)
	}
	f := &sidecars{o: o, t: t, dir: dir, exited: make(chan error, len(names))}
	for _, id := range names {
		token, err := t.agentToken(ctx, id)
		if err != nil {
			return f, err
		}
		f.names = append(f.names, id)
		if err := os.WriteFile(f.tokenFile(id), []byte(token+"\n"), 0o600); err != nil {
			return f, fmt.Errorf("write token file: %w", err)
		}
	}
	st, err := t.stats(ctx)
	f.baseline = st.ByStatus["completed"]
	return f, err
}

func (f *sidecars) tokenFile(id string) string { return filepath.Join(f.dir, id+".token") }

func (f *sidecars) ids() []string { return f.names }

func (f *sidecars) completed() int { return int(f.done.Load()) }

// start runs every sidecar and waits until the hub has them all online.
func (f *sidecars) start(ctx context.Context) error {
	for _, id := range f.names {
		if err := f.spawn(id); err != nil {
			return err
		}
	}
	return f.poll(ctx, "the sidecars online", f.allOnline)
}

func (f *sidecars) spawn(id string) error {
	cmd := exec.Command(f.o.SidecarBin, "sidecar", "--agent-id", id, "--token-file", f.tokenFile(id),
		"--hub", f.t.url, "--exec", "true", "--max-tasks", strconv.Itoa(f.o.Slots),
		"--state-dir", filepath.Join(f.dir, id), "--log-level", "warning", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = f.o.Log, f.o.Log
	cmd.Env = sidecarEnv()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sidecar %s: %w", id, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	f.procs = append(f.procs, p)
	go func() {
		defer close(p.done)
		err := cmd.Wait()
		if !f.stopping.Load() {
			f.exited <- fmt.Errorf("sidecar %s ended: %v", id, err)
		}
	}()
	return nil
}

// proc is a sidecar process; done is closed once it was waited for.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// sidecarEnv is the bench's environment without AGENTCOM_* variables:
// the flags say everything, and a token there must not reach a sidecar.
func sidecarEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTCOM_") {
			env = append(env, kv)
		}
	}
	return env
}

func (f *sidecars) allOnline(ctx context.Context) (bool, error) {
	var list ops.AgentList
	if err := f.t.admin.Do(ctx, ops.OpAgentList, nil, &list); err != nil {
		return false, fmt.Errorf("list agents: %w", err)
	}
	online := map[string]bool{}
	for _, a := range list.Agents {
		online[a.ID] = a.Online()
	}
	for _, id := range f.names {
		if !online[id] {
			return false, nil
		}
	}
	return true, nil
}

func (f *sidecars) waitAll(ctx context.Context, n int) error {
	return f.poll(ctx, "every task completed", func(ctx context.Context) (bool, error) {
		st, err := f.t.stats(ctx)
		if err != nil {
			return false, err
		}
		f.done.Store(int64(st.ByStatus["completed"] - f.baseline))
		return f.completed() >= n, nil
	})
}

// poll asks cond every sidecarPoll until it holds, a sidecar ends, or ctx does.
func (f *sidecars) poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	tick := time.NewTicker(sidecarPoll)
	defer tick.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil || ok {
			return err
		}
		select {
		case err := <-f.exited:
			return err
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop sends every sidecar SIGTERM, kills those that have not ended
// after sidecarStopWait, and removes the directory.
func (f *sidecars) stop() {
	f.stopping.Store(true)
	for _, p := range f.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	timeout := time.After(sidecarStopWait)
	for _, p := range f.procs {
		select {
		case <-p.done:
		case <-timeout:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	_ = os.RemoveAll(f.dir)
}
