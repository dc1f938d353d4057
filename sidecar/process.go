package sidecar

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentcom/agentcom/domain"
)

// Output limits.
const (
	stderrTail  = 2000                  // bytes of stderr kept for a failure
	stdoutLimit = domain.MaxResultBytes // bytes of stdout kept for a result
	drainGrace  = 2 * time.Second       // wait for pipes after the group is gone
	envPrefix   = "AGENTCOM_"           // the child sees only the task's AGENTCOM_* vars
	procRoot    = "/proc"               // where orphaned process groups are looked for
	markerVar   = "AGENTCOM_TASK_ID"    // identifies a task's processes
	orphanWait  = 5 * time.Second       // how long an orphan's group may take to die
	// generationVar tells one assignment's processes from another's.
	generationVar = "AGENTCOM_TASK_GENERATION"
)

// procSpec is one shell command to run in its own process group.
type procSpec struct {
	command string
	env     []string
	stdin   []byte
	timeout time.Duration // 0: none
	grace   time.Duration // between SIGTERM and SIGKILL
	onStart func(pgid int)
}

// procResult is how a command ended.
type procResult struct {
	stdout    []byte
	truncated bool   // stdout went over stdoutLimit
	stdoutLen int    // bytes the command wrote on stdout, kept or not
	stderr    []byte // the last stderrTail bytes
	err       error  // from Wait: nil, or an *exec.ExitError
	timedOut  bool
	stopped   bool // ctx ended first
}

// runProcess runs sp.command with sh -c as the leader of a new process
// group, and returns once the leader has exited. Whatever is left of the
// group is then killed: a task's processes never outlive it.
func runProcess(ctx context.Context, sp procSpec) (procResult, error) {
	cmd := exec.Command("sh", "-c", sp.command)
	cmd.Env = sp.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := openPipes(cmd, sp.stdin)
	if err != nil {
		return procResult{}, err
	}
	defer p.closeParent()
	if err := cmd.Start(); err != nil {
		p.closeChild()
		return procResult{}, fmt.Errorf("start command: %w", err)
	}
	p.closeChild()
	pgid := cmd.Process.Pid
	if sp.onStart != nil {
		sp.onStart(pgid)
	}
	p.startCopies()
	res := waitProcess(ctx, cmd, pgid, sp)
	killGroup(pgid, syscall.SIGKILL)
	res.stdout, res.stderr = p.collect(drainGrace)
	res.truncated, res.stdoutLen = p.out.over, p.out.n
	return res, nil
}

// waitProcess waits for the group leader, stopping the group when ctx ends
// or the timeout passes.
func waitProcess(ctx context.Context, cmd *exec.Cmd, pgid int, sp procSpec) procResult {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if sp.timeout > 0 {
		t := time.NewTimer(sp.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err := <-done:
		return procResult{err: err}
	case <-ctx.Done():
		return procResult{err: terminate(pgid, done, sp.grace), stopped: true}
	case <-timeout:
		return procResult{err: terminate(pgid, done, sp.grace), timedOut: true}
	}
}

// terminate sends the group SIGTERM, then SIGKILL after grace, and
// returns the leader's exit.
func terminate(pgid int, done <-chan error, grace time.Duration) error {
	killGroup(pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		killGroup(pgid, syscall.SIGKILL)
		return <-done
	}
}

func killGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// pipes connects a command's stdin, stdout and stderr to os pipes, so
// that Wait returns when the leader exits even if a straggler still holds
// an end.
type pipes struct {
	stdinR, stdinW, outR, outW, errR, errW *os.File
	stdin                                  []byte
	wg                                     sync.WaitGroup
	out                                    limitedBuffer
	tail                                   tailBuffer
}

func openPipes(cmd *exec.Cmd, stdin []byte) (*pipes, error) {
	p := &pipes{stdin: stdin, out: limitedBuffer{limit: stdoutLimit}, tail: tailBuffer{size: stderrTail}}
	var err error
	if p.stdinR, p.stdinW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("open stdin pipe: %w", err)
	}
	if p.outR, p.outW, err = os.Pipe(); err != nil {
		p.closeChild()
		p.closeParent()
		return nil, fmt.Errorf("open stdout pipe: %w", err)
	}
	if p.errR, p.errW, err = os.Pipe(); err != nil {
		p.closeChild()
		p.closeParent()
		return nil, fmt.Errorf("open stderr pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.stdinR, p.outW, p.errW
	return p, nil
}

func (p *pipes) closeChild() { closeAll(p.stdinR, p.outW, p.errW) }

func (p *pipes) closeParent() { closeAll(p.stdinW, p.outR, p.errR) }

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			_ = f.Close()
		}
	}
}

// startCopies feeds stdin and reads stdout and stderr.
func (p *pipes) startCopies() {
	p.wg.Add(3)
	go func() {
		defer p.wg.Done()
		_, _ = p.stdinW.Write(p.stdin) // EPIPE when the command does not read it
		_ = p.stdinW.Close()
	}()
	go func() { defer p.wg.Done(); copySmall(&p.out, p.outR) }()
	go func() { defer p.wg.Done(); copySmall(&p.tail, p.errR) }()
}

// copyBuffers are the buffers of copySmall: a sidecar with many slots runs
// two copies per command, and io.Copy's own 32 KiB each would be most of
// its memory.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// copySmall copies src to dst through a pooled 4 KiB buffer. src is
// wrapped so that *os.File's WriteTo, which allocates its own buffer,
// is not used.
func copySmall(dst io.Writer, src io.Reader) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, _ = io.CopyBuffer(dst, struct{ io.Reader }{src}, *buf)
}

// collect waits for the copies to end, at most grace (a process that left
// the group may hold a pipe open), and returns stdout and stderr's tail.
func (p *pipes) collect(grace time.Duration) ([]byte, []byte) {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		p.closeParent()
		<-done
	}
	return p.out.buf.Bytes(), p.tail.bytes()
}

// limitedBuffer keeps the first limit bytes and notes whether more came,
// and how much in all.
type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
	n     int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.n += len(p)
	room := b.limit - b.buf.Len()
	if len(p) > room {
		b.over = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

// tailBuffer keeps the last size bytes written.
type tailBuffer struct {
	buf  []byte
	size int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.size {
		b.buf = append(b.buf[:0:0], b.buf[len(b.buf)-b.size:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) bytes() []byte {
	if len(b.buf) > b.size {
		return b.buf[len(b.buf)-b.size:]
	}
	return b.buf
}

// childEnv is the sidecar's environment without any AGENTCOM_* variable
// (the agent's token must not reach the command), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// endOrphan kills the process group pgid if it is still a task's: one of
// its processes must carry AGENTCOM_TASK_ID=taskID in its environment, so
// a reused pid is never hit. It reports whether it killed anything. It
// works where /proc exists (Linux); elsewhere it does nothing.
func endOrphan(pgid int, taskID string) bool {
	if pgid <= 1 {
		return false
	}
	if _, ok := findProc(func(pid int) bool {
		return processGroup(pid) == pgid && hasEnv(pid, markerVar+"="+taskID)
	}); !ok {
		return false
	}
	killGroupAndWait(pgid)
	return true
}

// endUnrecorded kills the process group an earlier run started but died
// before recording (a kill -9 between the start and the state save): a
// group whose leader carries the task's id and generation in its
// environment. It returns the group killed, or 0.
func endUnrecorded(taskID string, generation uint64) int {
	gen := generationVar + "=" + strconv.FormatUint(generation, 10)
	pid, ok := findProc(func(pid int) bool {
		return processGroup(pid) == pid && hasEnv(pid, markerVar+"="+taskID) && hasEnv(pid, gen)
	})
	if !ok {
		return 0
	}
	killGroupAndWait(pid)
	return pid
}

// findProc returns the first process under procRoot that match accepts.
func findProc(match func(pid int) bool) (int, bool) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && match(pid) {
			return pid, true
		}
	}
	return 0, false
}

// processGroup reads a process's group from /proc/<pid>/stat, or -1.
func processGroup(pid int) int {
	pg, _ := procStat(pid)
	return pg
}

// procStat reads a process's group and state letter (Z: exited, not yet
// reaped) from /proc/<pid>/stat; the group is -1 if unreadable.
func procStat(pid int) (int, string) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1, ""
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces
	if i < 0 {
		return -1, ""
	}
	f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
	if len(f) < 3 {
		return -1, ""
	}
	pg, err := strconv.Atoi(f[2])
	if err != nil {
		return -1, ""
	}
	return pg, f[0]
}

// killGroupAndWait kills a process group and waits, up to orphanWait,
// until none of its processes runs (an exited one has let go of its
// files and locks even before it is reaped): a rerun must not start
// beside the run it replaces.
func killGroupAndWait(pgid int) {
	killGroup(pgid, syscall.SIGKILL)
	for deadline := time.Now().Add(orphanWait); time.Now().Before(deadline) && groupRuns(pgid); {
		time.Sleep(2 * time.Millisecond)
	}
}

// groupRuns reports whether a process of the group is still running.
func groupRuns(pgid int) bool {
	_, ok := findProc(func(pid int) bool {
		pg, state := procStat(pid)
		return pg == pgid && state != "Z" && state != "X"
	})
	return ok
}

func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "environ"))
	if err != nil {
		return false
	}
	for _, v := range bytes.Split(b, []byte{0}) {
		if string(v) == kv {
			return true
		}
	}
	return false
}

// exitMessage describes a failed command: the tail of its stderr, or how
// it ended.
func exitMessage(res procResult) string {
	if msg := strings.TrimSpace(string(res.stderr)); msg != "" {
		return msg
	}
	if res.err != nil {
		return res.err.Error()
	}
	return "failed"
}
