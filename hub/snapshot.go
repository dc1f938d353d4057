package hub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/agentcom/agentcom/atomicfile"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/writer"
)

// The snapshot file: <data-dir>/snapshots/projections.snap.
const (
	snapshotDir  = "snapshots"
	snapshotFile = "projections.snap"
	// snapshotFileFormat is the layout of the file (header line, body).
	snapshotFileFormat = 1
	// maxSnapshotHeader bounds the header line.
	maxSnapshotHeader = 4096
)

// noSnapshot is loadSnapshot's reason when there is no file at all.
const noSnapshot = "no snapshot file"

// snapshotHeader is the first line of the snapshot file, as JSON. The
// body (projections.Views.Snapshot) follows it.
type snapshotHeader struct {
	Format      int       `json:"format"`
	CodeVersion int       `json:"code_version"`
	LastSeq     uint64    `json:"last_seq"`
	LastMsgID   string    `json:"last_msg_id"` // the Nats-Msg-Id (event id) of the event at LastSeq
	BodyBytes   int       `json:"body_bytes"`
	Checksum    string    `json:"checksum"` // "sha256:" and the body's hex digest
	CreatedAt   time.Time `json:"created_at"`
}

// startViews starts a new command service on views: it replays the
// events after views.LastSeq() and takes commands.
func (h *Hub) startViews(ctx context.Context, views *projections.Views) error {
	h.views = views
	h.svc = writer.New(writer.Params{Store: h.store, Views: h.views, Log: h.log, Now: h.now,
		SyncAlways: h.cfg.Store.SyncInterval == 0})
	return h.svc.Start(ctx)
}

// snapshotViews returns the views of the snapshot file and the sequence
// they hold, or empty views and 0 when the snapshot is missing or not
// usable (the reason is logged). The load is a telemetry span.
func (h *Hub) snapshotViews(ctx context.Context) (*projections.Views, uint64) {
	var views *projections.Views
	var why string
	_ = h.tel.Span("store.snapshot_load", nil, func() (map[string]any, error) {
		views, why = h.loadSnapshot(ctx)
		if views == nil {
			return map[string]any{"loaded": false, "reason": why}, nil
		}
		return map[string]any{"loaded": true, "last_seq": views.LastSeq()}, nil
	})
	if views == nil {
		h.snapshotDiscarded(why)
		return projections.NewViews(), 0
	}
	return views, views.LastSeq()
}

// snapshotDiscarded logs why the projections are rebuilt from the start.
func (h *Hub) snapshotDiscarded(why string) {
	log := h.log.Module("store")
	if why == noSnapshot {
		log.Info().Msg("no projection snapshot: rebuilding from the start")
		return
	}
	h.ops.record(&h.ops.snapshot, false, map[string]any{"op": "load", "discarded": why})
	log.Warning().Str("reason", why).Msg("snapshot discarded")
}

// snapshotLoaded logs and records a start from the snapshot at from that
// replayed the events up to last.
func (h *Hub) snapshotLoaded(from, last uint64, took time.Duration) {
	tail := last - from
	h.ops.record(&h.ops.snapshot, true, map[string]any{"op": "load", "last_seq": from,
		"tail_events": tail, "duration_ms": took.Milliseconds()})
	h.log.Module("store").Notice().Uint64("last_seq", from).Uint64("tail_events", tail).
		Dur("duration_ms", took).Msg("snapshot loaded")
}

// loadSnapshot reads the snapshot file and checks it against the stream.
// It returns nil and the reason when the file is missing, torn, corrupt,
// of another format or code version, ahead of the stream, or when the
// event at its last sequence is not the one it was taken at (a truncated
// store reused the sequence): the caller then rebuilds from the start.
func (h *Hub) loadSnapshot(ctx context.Context) (*projections.Views, string) {
	removeTempSnapshots(filepath.Dir(snapshotPath(h.cfg.DataDir)))
	data, err := os.ReadFile(snapshotPath(h.cfg.DataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noSnapshot
	}
	if err != nil {
		return nil, "cannot read the snapshot: " + err.Error()
	}
	hdr, body, why := parseSnapshot(data)
	if why == "" {
		why = h.checkSnapshotSeq(ctx, hdr)
	}
	if why == "" {
		why = checkSum(hdr, body)
	}
	if why != "" {
		return nil, why
	}
	views, err := projections.ViewsFromSnapshot(body)
	if err != nil {
		return nil, "unreadable body: " + err.Error()
	}
	if views.LastSeq() != hdr.LastSeq {
		return nil, fmt.Sprintf("corrupt: the body is at sequence %d, the header says %d", views.LastSeq(), hdr.LastSeq)
	}
	return views, ""
}

// parseSnapshot splits the file into its header and body, and checks the
// versions and the body's length.
func parseSnapshot(data []byte) (snapshotHeader, []byte, string) {
	var hdr snapshotHeader
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return hdr, nil, "torn: the header line is incomplete"
	}
	if err := json.Unmarshal(data[:i], &hdr); err != nil {
		return hdr, nil, "corrupt header: " + err.Error()
	}
	body := data[i+1:]
	switch {
	case hdr.Format != snapshotFileFormat:
		return hdr, nil, fmt.Sprintf("file format %d, this hub reads %d", hdr.Format, snapshotFileFormat)
	case hdr.CodeVersion != projections.CodeVersion:
		return hdr, nil, fmt.Sprintf("taken by projection code version %d, this hub runs %d", hdr.CodeVersion, projections.CodeVersion)
	case len(body) < hdr.BodyBytes:
		return hdr, nil, fmt.Sprintf("torn: the body has %d of its %d bytes", len(body), hdr.BodyBytes)
	case len(body) > hdr.BodyBytes:
		return hdr, nil, fmt.Sprintf("corrupt: the body has %d bytes, the header says %d", len(body), hdr.BodyBytes)
	case hdr.LastSeq == 0:
		return hdr, nil, "corrupt header: no last sequence"
	}
	return hdr, body, ""
}

// checkSum compares the body's digest with the header's.
func checkSum(hdr snapshotHeader, body []byte) string {
	if got := bodyChecksum(body); got != hdr.Checksum {
		return fmt.Sprintf("corrupt: checksum %s, the header says %s", got, hdr.Checksum)
	}
	return ""
}

func bodyChecksum(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkSnapshotSeq checks that the stream still holds, at the snapshot's
// last sequence, the event the snapshot was taken at.
func (h *Hub) checkSnapshotSeq(ctx context.Context, hdr snapshotHeader) string {
	last, err := h.store.LastSeq(ctx)
	if err != nil {
		return "cannot check it against the stream: " + err.Error()
	}
	if hdr.LastSeq > last {
		return h.lost(fmt.Sprintf("from the future: taken at sequence %d, the stream ends at %d", hdr.LastSeq, last))
	}
	id, err := h.store.MsgID(ctx, hdr.LastSeq)
	if errors.Is(err, broker.ErrNoMessage) {
		return h.lost(fmt.Sprintf("the event at sequence %d is no longer in the stream", hdr.LastSeq))
	}
	if err != nil {
		return "cannot check it against the stream: " + err.Error()
	}
	if id != hdr.LastMsgID {
		return h.lost(fmt.Sprintf("the event at sequence %d is %s, not %s: the stream was truncated and the sequence reused",
			hdr.LastSeq, id, hdr.LastMsgID))
	}
	return ""
}

// lost records that the store lost events it had when the snapshot was
// taken (a corrupt or truncated block was cut off): store health is then
// unhealthy until a restart on a sound store. It returns why, for the log.
func (h *Hub) lost(why string) string {
	h.ops.mu.Lock()
	if h.ops.lossAtStart == "" {
		h.ops.lossAtStart = "the event store lost data since the last snapshot: " + why
	}
	h.ops.mu.Unlock()
	h.log.Module("store").Error().Str("reason", why).Msg("event store lost data")
	return why
}

// saveSnapshot writes the projections to the snapshot file, unless the
// file already holds their state. It logs and records the result (store
// health shows it).
func (h *Hub) saveSnapshot(ctx context.Context) error {
	start := time.Now()
	hdr, err := h.writeSnapshot(ctx)
	log := h.log.Module("store")
	if err != nil {
		h.ops.record(&h.ops.snapshot, false, map[string]any{"op": "save", "error": err.Error()})
		log.Error().Err(err).Msg("snapshot failed")
		return err
	}
	if hdr == nil {
		return nil
	}
	took := time.Since(start)
	h.ops.record(&h.ops.snapshot, true, map[string]any{"op": "save", "last_seq": hdr.LastSeq,
		"bytes": hdr.BodyBytes, "duration_ms": took.Milliseconds()})
	log.Notice().Uint64("last_seq", hdr.LastSeq).Int("bytes", hdr.BodyBytes).Dur("duration_ms", took).
		Msg("snapshot saved")
	return nil
}

// writeSnapshot writes the file and returns its header, or nil when there
// was nothing new to write.
func (h *Hub) writeSnapshot(ctx context.Context) (*snapshotHeader, error) {
	last := h.views.LastSeq()
	if last == 0 || h.lossFound() || h.snapshotCurrent(ctx, last) {
		return nil, nil
	}
	body, seq, err := h.views.SnapshotSeq()
	if err != nil {
		return nil, fmt.Errorf("take snapshot: %w", err)
	}
	id, err := h.store.MsgID(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("take snapshot: %w", err)
	}
	hdr, line, err := newSnapshotHeader(body, seq, id)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(snapshotPath(h.cfg.DataDir), 0o600, line, body); err != nil {
		return nil, err
	}
	return hdr, nil
}

// newSnapshotHeader returns the header of a snapshot body taken at seq,
// whose event has the id, and its line (newline included).
func newSnapshotHeader(body []byte, seq uint64, id string) (*snapshotHeader, []byte, error) {
	hdr := &snapshotHeader{Format: snapshotFileFormat, CodeVersion: projections.CodeVersion, LastSeq: seq,
		LastMsgID: id, BodyBytes: len(body), Checksum: bodyChecksum(body), CreatedAt: time.Now().UTC()}
	line, err := json.Marshal(hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("encode snapshot header: %w", err)
	}
	return hdr, append(line, '\n'), nil
}

// snapshotCurrent reports whether the file already holds the state at
// last, taken by this code, at the event now stored at last.
func (h *Hub) snapshotCurrent(ctx context.Context, last uint64) bool {
	hdr, err := readSnapshotHeader(snapshotPath(h.cfg.DataDir))
	if err != nil || hdr.Format != snapshotFileFormat || hdr.CodeVersion != projections.CodeVersion || hdr.LastSeq != last {
		return false
	}
	id, err := h.store.MsgID(ctx, last)
	return err == nil && id == hdr.LastMsgID
}

// readSnapshotHeader reads only the header line of a snapshot file.
func readSnapshotHeader(path string) (snapshotHeader, error) {
	var hdr snapshotHeader
	f, err := os.Open(path)
	if err != nil {
		return hdr, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, maxSnapshotHeader).ReadSlice('\n')
	if err != nil {
		return hdr, fmt.Errorf("read snapshot header: %w", err)
	}
	if err := json.Unmarshal(line, &hdr); err != nil {
		return hdr, fmt.Errorf("decode snapshot header: %w", err)
	}
	return hdr, nil
}

// saveSnapshotAtStop saves the projections once the service has stopped,
// if they followed the stream to the end (never after a failed start).
func (h *Hub) saveSnapshotAtStop(ctx context.Context) {
	if h.svc == nil || !h.svc.Started() || h.svc.Err() != nil {
		return
	}
	_ = h.saveSnapshot(ctx)
}

// removeTempSnapshots removes temp files a crash left behind. Only called
// at start, when no save runs.
func removeTempSnapshots(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempPattern(snapshotFile)))
	for _, name := range names {
		_ = os.Remove(name)
	}
}
