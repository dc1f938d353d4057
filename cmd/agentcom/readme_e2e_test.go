package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeBlock is one ```sh block of README.md: its section, the prose just
// before it, and its commands (a line ending in \ continues on the next).
type readmeBlock struct {
	section, lead string
	commands      []string
}

// readmeBlocks parses the ```sh blocks of the README's given sections.
func readmeBlocks(t *testing.T, path string, sections ...string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var (
		blocks        []readmeBlock
		section, lead string
		cur           *readmeBlock
		cont          bool
	)
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "## "):
			section, lead = strings.TrimPrefix(line, "## "), ""
		case cur == nil && line == "```sh":
			cur = &readmeBlock{section: section, lead: lead}
		case cur == nil:
			lead += line + "\n"
		case line == "```":
			blocks = append(blocks, *cur)
			cur, lead = nil, ""
		case cont:
			cur.commands[len(cur.commands)-1] += "\n" + line
		case strings.TrimSpace(line) != "":
			cur.commands = append(cur.commands, line)
		}
		cont = cur != nil && strings.HasSuffix(line, "\\")
	}
	var out []readmeBlock
	for _, b := range blocks {
		for _, s := range sections {
			if b.section == s {
				out = append(out, b)
			}
		}
	}
	return out
}

// readmeRun runs the README's commands as written, each with sh -c in a
// directory where ./agentcom is the binary under test, with HOME a
// temporary directory (so ~/.local/share/agentcom is a fresh data dir)
// and the hub's listeners on free ports through AGENTCOM_* variables.
type readmeRun struct {
	t        *testing.T
	dir      string
	env      []string
	dataDir  string
	httpAddr string
	hub      *hubProc
	lastID   string
}

func newReadmeRun(t *testing.T) *readmeRun {
	home, dir := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(bin, filepath.Join(dir, "agentcom")))
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	env := []string{"HOME=" + home, "AGENTCOM_HUB=nats://" + natsAddr,
		"AGENTCOM_NATS_LISTEN=" + natsAddr, "AGENTCOM_HTTP_LISTEN=" + httpAddr}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTCOM_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	return &readmeRun{t: t, dir: dir, env: env, httpAddr: httpAddr,
		dataDir: filepath.Join(home, ".local", "share", "agentcom")}
}

// shell is command as sh runs it, in the run's directory and environment.
func (r *readmeRun) shell(command string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir, cmd.Env = r.dir, r.env
	return cmd
}

// expand fills in what a reader would: the id the last submit printed,
// and the test hub's HTTP address for the default one.
func (r *readmeRun) expand(command string) string {
	if strings.Contains(command, "<id>") {
		require.NotEmpty(r.t, r.lastID, "a command uses <id> before any task submit: %s", command)
	}
	command = strings.ReplaceAll(command, "<id>", r.lastID)
	return strings.ReplaceAll(command, "localhost:4000", r.httpAddr)
}

// startHub runs a README hub command in the background.
func (r *readmeRun) startHub(command string) {
	r.hub = startHubCmd(r.t, r.shell("exec "+command), r.dataDir)
}

func (r *readmeRun) stopHub() {
	require.NotNil(r.t, r.hub, "the README stops a hub that is not running")
	r.hub.terminate(r.t)
	r.hub = nil
}

// run runs one README command: long-running ones in the background, the
// rest to their end, which must be exit 0.
func (r *readmeRun) run(command string) {
	t := r.t
	command = r.expand(command)
	switch {
	case strings.HasPrefix(command, "go build "):
		// TestMain built this package's binary already: ./agentcom is it.
		return
	case strings.HasPrefix(command, "tail -f "), regexp.MustCompile(`^\./agentcom events\s+(#|$)`).MatchString(command):
		// They stream until Ctrl-C and check nothing: skipped by name.
		return
	case strings.HasPrefix(command, "./agentcom hub"):
		r.startHub(command)
		return
	case strings.HasPrefix(command, "./agentcom sidecar "):
		startSidecarCmd(t, "readme", r.shell("exec "+command))
		return
	}
	cmd := r.shell(command)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "README command %q failed: %s", command, errb.String())
	if strings.HasPrefix(command, "./agentcom task submit ") {
		r.lastID = strings.TrimSpace(out.String())
		require.Regexp(t, `^task-[0-9a-f]{16}$`, r.lastID, command)
	}
}

// runBlock runs a block's commands in order; a block whose lead says to
// stop the hub runs with it stopped, as the README asks.
func (r *readmeRun) runBlock(b readmeBlock) {
	if strings.Contains(b.lead, "Stop the hub") {
		r.stopHub()
	}
	for _, c := range b.commands {
		r.run(c)
	}
}

// TestReadmeTryItAndRunAnAgent runs the README's "Try it" and "Run an
// agent" commands as written and sees the agent complete its task with
// its result.
func TestReadmeTryItAndRunAnAgent(t *testing.T) {
	t.Parallel()
	blocks := readmeBlocks(t, filepath.Join("..", "..", "README.md"), "Try it", "Run an agent")
	require.Len(t, blocks, 4, "Try it: commands, replay; Run an agent: the agent, watching")
	r := newReadmeRun(t)
	// "With the hub running": the README's first block runs it with go run.
	r.startHub("./agentcom hub")
	for _, b := range blocks[:2] {
		r.runBlock(b)
	}
	require.Nil(t, r.hub, "the replay step stopped the hub")
	require.True(t, strings.HasPrefix(blocks[2].commands[0], "./agentcom hub"),
		"Run an agent starts the hub again after the replay: %q", blocks[2].commands[0])
	r.runBlock(blocks[2])
	require.NotNil(t, r.hub)
	agentTask, show := r.lastID, r.expand(lastCommand(t, blocks[2], "./agentcom task show "))
	r.runBlock(blocks[3])

	// The agent counts the words of the description it was given.
	submit := lastCommand(t, blocks[2], "./agentcom task submit ")
	desc := regexp.MustCompile(`submit "([^"]+)"`).FindStringSubmatch(submit)
	require.NotNil(t, desc, submit)
	want := strconv.Itoa(len(strings.Fields(desc[1])))
	completed := regexp.MustCompile(`(?m)^status\s+completed$`)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		out, err := r.shell(show).Output()
		assert.NoError(c, err)
		assert.Regexp(c, completed, string(out))
		assert.Contains(c, string(out), "result:\n  "+want+"\n")
	}, 60*time.Second, 100*time.Millisecond, "%s shows the task completed with result %s", show, want)
	out, err := r.shell("./agentcom task show --json " + agentTask).Output()
	require.NoError(t, err)
	var task struct {
		Status     string          `json:"status"`
		AssignedTo string          `json:"assigned_to"`
		Result     json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(out, &task))
	require.Equal(t, "completed", task.Status)
	require.JSONEq(t, want, string(task.Result))

	// The token went by file, never on the sidecar's command line.
	tok, err := os.ReadFile(filepath.Join(r.dir, "my-agent.token"))
	require.NoError(t, err)
	require.NotContains(t, sidecarArgv(t), strings.TrimSpace(string(tok)))
}

// lastCommand is the block's last command starting with prefix.
func lastCommand(t *testing.T, b readmeBlock, prefix string) string {
	t.Helper()
	for i := len(b.commands) - 1; i >= 0; i-- {
		if strings.HasPrefix(b.commands[i], prefix) {
			return b.commands[i]
		}
	}
	t.Fatalf("no %q command in the README's %q block", prefix, b.section)
	return ""
}

// sidecarArgv is the command line of every running sidecar, as ps shows it.
func sidecarArgv(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "args").Output()
	if err != nil { // no ps: read /proc as ps does
		var b strings.Builder
		paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range paths {
			data, _ := os.ReadFile(p)
			b.Write(bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
			b.WriteByte('\n')
		}
		out = []byte(b.String())
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " sidecar ") {
			lines = append(lines, l)
		}
	}
	require.NotEmpty(t, lines, "no sidecar process found")
	return strings.Join(lines, "\n")
}
