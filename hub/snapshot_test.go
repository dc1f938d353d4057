package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/atomicfile"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/storeops"
	"github.com/agentcom/agentcom/writer"
)

// viewState is everything compared between hubs.
type viewState struct {
	State  projections.State
	Stats  projections.Stats
	Agents []*domain.Agent
}

func stateOf(h *Hub) viewState {
	return viewState{State: h.Tasks().State(), Stats: h.Tasks().Stats(), Agents: h.Agents().List()}
}

// replayedState rebuilds the projections of h's store from its first
// event, the way a hub without a snapshot does.
func replayedState(t *testing.T, h *Hub) viewState {
	t.Helper()
	r, err := storeops.ReplayStore(context.Background(), h.Store(), storeops.ReplayOpts{})
	require.NoError(t, err)
	return viewState{State: r.State, Stats: r.Stats, Agents: r.Agents}
}

// snapshotRecord is the last snapshot operation store health shows.
func snapshotRecord(h *Hub) *storeops.OpRecord {
	return h.ops.LastSnapshot()
}

// logLine returns the first log line with the message, decoded.
func logLine(t *testing.T, h *testHub, message string) map[string]any {
	t.Helper()
	for _, line := range h.logs.Lines() {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["message"] == message {
			return m
		}
	}
	return nil
}

// work runs the shared workload, then takes every agent offline, so that
// the scheduler of a restarted hub finds nobody to assign to and the
// state stays still while it is compared.
func work(t *testing.T, h *Hub, workers, perWorker int) {
	t.Helper()
	workload(t, h, workers, perWorker)
	for _, a := range h.Agents().List() {
		if a.Online() {
			_, err := h.svc.ExecuteAgent(context.Background(), domain.DisconnectAgent{ID: a.ID, Reason: "test"})
			require.NoError(t, err)
		}
	}
}

func snapshotFileOf(dir string) string { return storeops.SnapshotPath(dir) }

// readHeader decodes the header line of a snapshot file.
func readHeader(t *testing.T, dir string) storeops.SnapshotHeader {
	t.Helper()
	hdr, err := storeops.ReadSnapshotHeader(snapshotFileOf(dir))
	require.NoError(t, err)
	return hdr
}

// editHeader rewrites the header line, leaving the body as it is.
func editHeader(t *testing.T, dir string, edit func(*storeops.SnapshotHeader)) {
	t.Helper()
	data, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)
	i := bytes.IndexByte(data, '\n')
	var hdr storeops.SnapshotHeader
	require.NoError(t, json.Unmarshal(data[:i], &hdr))
	edit(&hdr)
	line, err := json.Marshal(hdr)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(snapshotFileOf(dir), append(line, data[i:]...), 0o600))
}

// TestSnapshotRestartGivesTheSameStateAndReplaysOnlyTheTail: a hub that
// starts from a snapshot has the state of a full rebuild and reads only
// the events after the snapshot; the snapshot is rewritten only when the
// state changed.
func TestSnapshotRestartGivesTheSameStateAndReplaysOnlyTheTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startHub(t, dir)
	work(t, first.Hub, 4, 10)
	first.Stop()
	atFirstStop := stateOf(first.Hub)
	require.True(t, snapshotRecord(first.Hub).OK)
	require.Equal(t, "save", snapshotRecord(first.Hub).Detail["op"])
	require.Equal(t, atFirstStop.State.LastSeq, readHeader(t, dir).LastSeq)
	old, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)

	// Started from the snapshot with nothing after it: nothing replayed.
	second := startHub(t, dir)
	requireLoaded(t, second, atFirstStop.State.LastSeq, 0)
	require.Equal(t, atFirstStop, stateOf(second.Hub))
	work(t, second.Hub, 2, 8)
	second.Stop()
	atSecondStop := stateOf(second.Hub)
	tail := atSecondStop.State.LastSeq - atFirstStop.State.LastSeq
	require.Positive(t, tail)

	// Put the older snapshot back: only the events after it are replayed.
	require.NoError(t, os.WriteFile(snapshotFileOf(dir), old, 0o600))
	third := startHub(t, dir)
	requireLoaded(t, third, atFirstStop.State.LastSeq, tail)
	require.Equal(t, atSecondStop, stateOf(third.Hub))
	require.Equal(t, atSecondStop, replayedState(t, third.Hub))
	third.Stop()

	// Without the snapshot: the same state, every event replayed.
	require.NoError(t, os.Remove(snapshotFileOf(dir)))
	fourth := startHub(t, dir)
	require.Nil(t, snapshotRecord(fourth.Hub), "a missing snapshot is not a failure")
	require.Equal(t, atSecondStop, stateOf(fourth.Hub))
	rebuilt := logLine(t, fourth, "projections rebuilt")
	require.EqualValues(t, atSecondStop.State.LastSeq, rebuilt["events"])
	fourth.Stop()

	// A start and stop that change nothing leave the file as it is.
	written, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)
	fifth := startHub(t, dir)
	requireLoaded(t, fifth, atSecondStop.State.LastSeq, 0)
	fifth.Stop()
	again, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)
	require.Equal(t, written, again)
}

// requireLoaded checks that h started from the snapshot at seq and
// replayed tail events after it, in store health and in the log.
func requireLoaded(t *testing.T, h *testHub, seq, tail uint64) {
	t.Helper()
	rec := snapshotRecord(h.Hub)
	require.NotNil(t, rec)
	require.True(t, rec.OK, rec.Detail)
	require.Equal(t, "load", rec.Detail["op"])
	require.Equal(t, seq, rec.Detail["last_seq"])
	require.Equal(t, tail, rec.Detail["tail_events"])
	line := logLine(t, h, "snapshot loaded")
	require.NotNil(t, line)
	require.Equal(t, "notice", line["severity"])
	require.EqualValues(t, seq, line["last_seq"])
	require.EqualValues(t, tail, line["tail_events"])
	require.Equal(t, seq+tail, h.Tasks().LastSeq())
}

// TestUnusableSnapshotIsDiscarded: each damaged or foreign snapshot is
// discarded with its reason, and the hub rebuilds from the first event to
// the same state as without a snapshot.
func TestUnusableSnapshotIsDiscarded(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	h := startHub(t, base)
	work(t, h.Hub, 3, 8)
	h.Stop()
	want := stateOf(h.Hub)
	size := func(dir string) int64 {
		info, err := os.Stat(snapshotFileOf(dir))
		require.NoError(t, err)
		return info.Size()
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		reason string
	}{
		{"body byte flipped", func(t *testing.T, dir string) {
			data, err := os.ReadFile(snapshotFileOf(dir))
			require.NoError(t, err)
			data[len(data)-len(data)/3] ^= 0x01
			require.NoError(t, os.WriteFile(snapshotFileOf(dir), data, 0o600))
		}, "corrupt: checksum"},
		{"body torn", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(snapshotFileOf(dir), size(dir)-100))
		}, "torn: the body has"},
		{"header torn", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(snapshotFileOf(dir), 40))
		}, "torn: the header line"},
		{"empty file", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(snapshotFileOf(dir), 0))
		}, "torn: the header line"},
		{"other code version", func(t *testing.T, dir string) {
			editHeader(t, dir, func(hdr *storeops.SnapshotHeader) { hdr.CodeVersion++ })
		}, "projection code version"},
		{"other file format", func(t *testing.T, dir string) {
			editHeader(t, dir, func(hdr *storeops.SnapshotHeader) { hdr.Format++ })
		}, "file format"},
		{"last_msg_id does not match", func(t *testing.T, dir string) {
			editHeader(t, dir, func(hdr *storeops.SnapshotHeader) { hdr.LastMsgID = "evt-from-another-store" })
		}, "the sequence reused"},
		{"from the future", func(t *testing.T, dir string) {
			editHeader(t, dir, func(hdr *storeops.SnapshotHeader) { hdr.LastSeq += 5 })
		}, "from the future"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS(base)))
			tc.damage(t, dir)
			got := startHub(t, dir)
			requireDiscarded(t, got, tc.reason)
			require.Equal(t, want, stateOf(got.Hub))
			require.Equal(t, want, replayedState(t, got.Hub))
		})
	}
}

// requireDiscarded checks that h discarded its snapshot for the reason,
// in store health and in the log, and replayed every event.
func requireDiscarded(t *testing.T, h *testHub, reason string) {
	t.Helper()
	rec := snapshotRecord(h.Hub)
	require.NotNil(t, rec)
	require.False(t, rec.OK)
	require.Equal(t, "load", rec.Detail["op"])
	require.Contains(t, rec.Detail["discarded"], reason)
	line := logLine(t, h, "snapshot discarded")
	require.NotNil(t, line)
	require.Equal(t, "warning", line["severity"])
	require.Contains(t, line["reason"], reason)
	require.Nil(t, logLine(t, h, "snapshot loaded"))
	rebuilt := logLine(t, h, "projections rebuilt")
	require.EqualValues(t, h.Tasks().LastSeq(), rebuilt["events"])
}

// TestSnapshotOfATruncatedStoreIsDiscarded is the case the checks exist
// for: the event store loses its tail (a damaged last block is cut off at
// start). When the server keeps the last sequence, the snapshot's event
// is missing; when it lost its index too, the stream ends before the
// snapshot and new events then reuse the lost sequences: a snapshot taken
// before the loss must not be used although its sequence exists again.
func TestSnapshotOfATruncatedStoreIsDiscarded(t *testing.T) {
	t.Parallel()
	t.Run("sequences kept", func(t *testing.T) {
		t.Parallel()
		dir, _ := truncatedStore(t, false)
		h := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
		requireDiscarded(t, h, "is no longer in the stream")
		require.Equal(t, replayedState(t, h.Hub), stateOf(h.Hub))
	})
	t.Run("sequences reused", func(t *testing.T) {
		t.Parallel()
		dir, old := truncatedStore(t, true)
		cut := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
		requireDiscarded(t, cut, "from the future")
		require.Less(t, cut.Tasks().LastSeq(), old.LastSeq)
		// No write reuses a lost sequence until the loss is accepted.
		_, err := cut.svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "refused"})
		require.ErrorIs(t, err, writer.ErrStoreLoss)
		cut.Stop()
		_, err = storeops.AcceptLoss(context.Background(), dir, "test", logsink.Nop())
		require.NoError(t, err)
		accepted := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
		for accepted.Tasks().LastSeq() < old.LastSeq+3 {
			accepted.submit(t, `{"description":"written after the loss"}`)
		}
		accepted.Stop()
		want := stateOf(accepted.Hub)

		// The old snapshot's sequence exists again, with another event.
		require.NoError(t, os.WriteFile(snapshotFileOf(dir), old.file, 0o600))
		again := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
		requireDiscarded(t, again, "the sequence reused")
		require.Equal(t, want, stateOf(again.Hub))
		require.Equal(t, want, replayedState(t, again.Hub))
	})
}

// oldSnapshot is a snapshot file taken before the store was damaged.
type oldSnapshot struct {
	LastSeq uint64
	file    []byte
}

// truncatedStore makes a stopped hub's data dir with a snapshot and 30
// events, then damages the end of the last block (and, if lostIndex,
// removes the stream's index so the server recounts from the blocks).
func truncatedStore(t *testing.T, lostIndex bool) (string, oldSnapshot) {
	t.Helper()
	dir := t.TempDir()
	h := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
	for range 30 {
		h.submit(t, `{"description":"data that will be damaged"}`)
	}
	h.Stop()
	file, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)
	old := oldSnapshot{LastSeq: readHeader(t, dir).LastSeq, file: file}
	msgs := filepath.Join(dir, "jetstream", "jetstream", "$G", "streams", "AGENTCOM_EVENTS", "msgs")
	blocks, err := filepath.Glob(filepath.Join(msgs, "*.blk"))
	require.NoError(t, err)
	require.NotEmpty(t, blocks)
	info, err := os.Stat(blocks[len(blocks)-1])
	require.NoError(t, err)
	damage(t, blocks[len(blocks)-1], info.Size())
	if lostIndex {
		require.NoError(t, os.Remove(filepath.Join(msgs, "index.db")))
	}
	return dir, old
}

// TestSnapshotSavedPeriodicallyAndShownInStoreHealth: the hub snapshots
// every store.snapshot_interval, skips when nothing changed, leaves no
// temp file, and store health shows the last snapshot.
func TestSnapshotSavedPeriodicallyAndShownInStoreHealth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stale := filepath.Join(filepath.Dir(snapshotFileOf(dir)), "."+filepath.Base(snapshotFileOf(dir))+".123.tmp")
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o700))
	require.NoError(t, os.WriteFile(stale, []byte("left by a crash"), 0o600))
	h := startHubCfg(t, dir, logsink.LevelInfo, func(cfg *config.Hub) { cfg.Store.SnapshotInterval = 20 * time.Millisecond })
	require.NoFileExists(t, stale, "a temp file a crash left is removed at start")
	for i := range 3 {
		h.submit(t, fmt.Sprintf(`{"description":"task %d"}`, i))
	}
	last := h.Tasks().LastSeq()
	require.Eventually(t, func() bool {
		hdr, err := storeops.ReadSnapshotHeader(snapshotFileOf(dir))
		return err == nil && hdr.LastSeq == last
	}, 10*time.Second, 10*time.Millisecond)
	health, err := h.ops.StoreHealth(context.Background())
	require.NoError(t, err)
	require.NotNil(t, health.Snapshot)
	require.True(t, health.Snapshot.OK)
	require.Equal(t, "save", health.Snapshot.Detail["op"])
	require.Equal(t, last, health.Snapshot.Detail["last_seq"])

	// Nothing changed: a save writes nothing.
	written, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)
	require.NoError(t, h.ops.SaveSnapshot(context.Background()))
	again, err := os.ReadFile(snapshotFileOf(dir))
	require.NoError(t, err)
	require.Equal(t, written, again)
	temps, err := filepath.Glob(filepath.Join(filepath.Dir(snapshotFileOf(dir)), ".*.tmp"))
	require.NoError(t, err)
	require.Empty(t, temps)
	hdr := readHeader(t, dir)
	require.Equal(t, projections.CodeVersion, hdr.CodeVersion)
	id, err := h.Store().MsgID(context.Background(), hdr.LastSeq)
	require.NoError(t, err)
	require.Equal(t, id, hdr.LastMsgID)
}

// TestSnapshotWhoseTailDoesNotApplyIsDiscarded: a snapshot that passes
// every check but disagrees with the events after it (here it lacks a
// task that a later event names) is dropped, and the hub rebuilds from
// the first event instead of failing to start.
func TestSnapshotWhoseTailDoesNotApplyIsDiscarded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHub(t, dir)
	h.submit(t, `{"description":"a"}`)
	lost := h.submit(t, `{"description":"missing from the snapshot"}`)
	h.submit(t, `{"description":"b"}`)
	ctx := context.Background()

	// Views at this point, but without the lost task's events.
	views := projections.NewViews()
	seq := h.Tasks().LastSeq()
	require.NoError(t, h.Store().Read(ctx, broker.ReadOpts{Until: seq}, func(env domain.Envelope) error {
		if env.Aggregate == lost {
			return nil
		}
		return views.Apply(env)
	}))
	body, at, err := views.SnapshotSeq()
	require.NoError(t, err)
	require.Equal(t, seq, at)
	id, err := h.Store().MsgID(ctx, seq)
	require.NoError(t, err)
	_, line, err := storeops.NewSnapshotHeader(body, seq, id)
	require.NoError(t, err)

	_, err = h.svc.Execute(ctx, domain.CancelTask{ID: lost, By: "admin", Reason: "r"})
	require.NoError(t, err)
	h.submit(t, `{"description":"c"}`)
	h.Stop()
	want := stateOf(h.Hub)
	require.NoError(t, atomicfile.Write(snapshotFileOf(dir), 0o600, line, body))

	again := startHub(t, dir)
	requireDiscarded(t, again, "the events after it do not apply")
	require.Equal(t, want, stateOf(again.Hub))
}
