package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/agentcom/agentcom/atomicfile"
	"github.com/agentcom/agentcom/protocol"
)

// The state file and its format version.
const (
	stateFile    = "current.json"
	lockFile     = "sidecar.lock"
	stateVersion = 1
)

// Local task statuses; they are also Holding.Status in hello.
const (
	statusAssigned = "assigned" // persisted, not yet accepted
	statusWorking  = "working"  // accepted
)

// record is one held task as persisted.
type record struct {
	Assignment protocol.Assignment `json:"assignment"`
	Status     string              `json:"status"`
	// Woken is set in wake mode once the wake command succeeded, so a
	// restart waits for the result file instead of waking again.
	Woken bool `json:"woken,omitempty"`
	// PGID is the process group of the exec command, so a restart can end
	// a command orphaned by a crash before running it again.
	PGID int `json:"pgid,omitempty"`
	// Outcome is set once the work finished, so a restart reports it
	// instead of redoing the work.
	Outcome   *outcome  `json:"outcome,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// outcome is the end of a task's work.
type outcome struct {
	Failed bool            `json:"failed,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Usage  *protocol.Usage `json:"usage,omitempty"` // what the work reported it cost
	Error  string          `json:"error,omitempty"`
}

func succeeded(result json.RawMessage) outcome { return outcome{Result: result} }
func failed(msg string) outcome                { return outcome{Failed: true, Error: msg} }

type stateDoc struct {
	Version int      `json:"version"`
	Tasks   []record `json:"tasks"`
}

// store persists the held tasks in one file, replaced atomically.
type store struct{ dir string }

func (st store) path() string { return filepath.Join(st.dir, stateFile) }

// load returns the persisted tasks; a missing file holds none.
func (st store) load() ([]record, error) {
	b, err := os.ReadFile(st.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode state %s: %w", st.path(), err)
	}
	if doc.Version != stateVersion {
		return nil, fmt.Errorf("decode state %s: version %d, want %d", st.path(), doc.Version, stateVersion)
	}
	return doc.Tasks, nil
}

// save replaces the state file with recs, or removes it when recs is
// empty; either way the directory is synced so the change survives a
// power cut.
func (st store) save(recs []record) error {
	if len(recs) == 0 {
		if err := os.Remove(st.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove state: %w", err)
		}
		return atomicfile.SyncDir(st.dir)
	}
	b, err := json.Marshal(stateDoc{Version: stateVersion, Tasks: recs})
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return atomicfile.Write(st.path(), 0o600, b)
}

// quarantine moves an unreadable state file aside and returns its new name.
func (st store) quarantine() (string, error) {
	to := fmt.Sprintf("%s.corrupt-%d", st.path(), time.Now().UnixNano())
	if err := os.Rename(st.path(), to); err != nil {
		return "", fmt.Errorf("move state aside: %w", err)
	}
	return to, atomicfile.SyncDir(st.dir)
}

// errStateLocked means another sidecar uses the state directory.
var errStateLocked = errors.New("state directory is in use by another sidecar")

// lockState creates dir and takes an exclusive lock on it for the life of
// the process, so two sidecars never share one state file.
func lockState(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, errStateLocked)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
