package storeops

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

// SnapshotHeader is the first line of the snapshot file, as JSON. The
// body (projections.Views.Snapshot) follows it.
type SnapshotHeader struct {
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
func (o *Ops) startViews(ctx context.Context, views *projections.Views) error {
	if o.svc != nil {
		o.svc.Stop() // the first try did not take
	}
	o.views = views
	views.Tasks.SetKeepFinished(o.cfg.Store.KeepFinished, o.loadTask)
	o.svc = writer.New(writer.Params{Store: o.store, Views: o.views, Log: o.log, Now: o.now,
		SyncAlways: o.cfg.Store.SyncInterval == 0})
	if err := o.svc.Start(ctx); err != nil {
		return err
	}
	views.Tasks.Live()
	return nil
}

// snapshotViews returns the views of the snapshot file and the sequence
// they hold, or empty views and 0 when the snapshot is missing or not
// usable (the reason is logged). The load is a telemetry span.
func (o *Ops) snapshotViews(ctx context.Context) (*projections.Views, uint64) {
	var views *projections.Views
	var why string
	_ = o.tel.Span("store.snapshot_load", nil, func() (map[string]any, error) {
		views, why = o.loadSnapshot(ctx)
		if views == nil {
			return map[string]any{"loaded": false, "reason": why}, nil
		}
		return map[string]any{"loaded": true, "last_seq": views.LastSeq()}, nil
	})
	if views == nil {
		o.snapshotDiscarded(why)
		return projections.NewViews(), 0
	}
	return views, views.LastSeq()
}

// snapshotDiscarded logs why the projections are rebuilt from the start.
func (o *Ops) snapshotDiscarded(why string) {
	log := o.log.Module("store")
	if why == noSnapshot {
		log.Info().Msg("no projection snapshot: rebuilding from the start")
		return
	}
	o.rec.record(&o.rec.snapshot, false, map[string]any{"op": "load", "discarded": why})
	log.Warning().Str("reason", why).Msg("snapshot discarded")
}

// snapshotLoaded logs and records a start from the snapshot at from that
// replayed the events up to last.
func (o *Ops) snapshotLoaded(from, last uint64, took time.Duration) {
	tail := last - from
	o.rec.record(&o.rec.snapshot, true, map[string]any{"op": "load", "last_seq": from,
		"tail_events": tail, "duration_ms": took.Milliseconds()})
	o.log.Module("store").Notice().Uint64("last_seq", from).Uint64("tail_events", tail).
		Dur("duration_ms", took).Msg("snapshot loaded")
}

// loadSnapshot reads the snapshot file and checks it against the stream.
// It returns nil and the reason when the file is missing, torn, corrupt,
// of another format or code version, ahead of the stream, or when the
// event at its last sequence is not the one it was taken at (a truncated
// store reused the sequence): the caller then rebuilds from the start.
func (o *Ops) loadSnapshot(ctx context.Context) (*projections.Views, string) {
	removeTempSnapshots(filepath.Dir(SnapshotPath(o.cfg.DataDir)))
	data, err := os.ReadFile(SnapshotPath(o.cfg.DataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noSnapshot
	}
	if err != nil {
		return nil, "cannot read the snapshot: " + err.Error()
	}
	hdr, body, why := parseSnapshot(data)
	if why == "" {
		why = o.checkSnapshotSeq(ctx, hdr)
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
func parseSnapshot(data []byte) (SnapshotHeader, []byte, string) {
	var hdr SnapshotHeader
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
func checkSum(hdr SnapshotHeader, body []byte) string {
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
func (o *Ops) checkSnapshotSeq(ctx context.Context, hdr SnapshotHeader) string {
	last, err := o.store.LastSeq(ctx)
	if err != nil {
		return "cannot check it against the stream: " + err.Error()
	}
	if hdr.LastSeq > last {
		return o.lost(fmt.Sprintf("from the future: taken at sequence %d, the stream ends at %d", hdr.LastSeq, last))
	}
	id, err := o.store.MsgID(ctx, hdr.LastSeq)
	if errors.Is(err, broker.ErrNoMessage) {
		return o.lost(fmt.Sprintf("the event at sequence %d is no longer in the stream", hdr.LastSeq))
	}
	if err != nil {
		return "cannot check it against the stream: " + err.Error()
	}
	if id != hdr.LastMsgID {
		return o.lost(fmt.Sprintf("the event at sequence %d is %s, not %s: the stream was truncated and the sequence reused",
			hdr.LastSeq, id, hdr.LastMsgID))
	}
	return ""
}

// lost records that the store lost events it had when the snapshot was
// taken (a corrupt or truncated block was cut off): store health is then
// unhealthy until a restart on a sound store. It returns why, for the log.
func (o *Ops) lost(why string) string {
	o.rec.mu.Lock()
	if o.rec.lossAtStart == "" {
		o.rec.lossAtStart = "the event store lost data since the last snapshot: " + why
	}
	o.rec.mu.Unlock()
	o.log.Module("store").Error().Str("reason", why).Msg("event store lost data")
	return why
}

// SaveSnapshot writes the projections to the snapshot file, unless the
// file already holds their state. It logs and records the result (store
// health shows it).
func (o *Ops) SaveSnapshot(ctx context.Context) error {
	start := time.Now()
	hdr, err := o.writeSnapshot(ctx)
	log := o.log.Module("store")
	if err != nil {
		o.rec.record(&o.rec.snapshot, false, map[string]any{"op": "save", "error": err.Error()})
		log.Error().Err(err).Msg("snapshot failed")
		return err
	}
	if hdr == nil {
		return nil
	}
	took := time.Since(start)
	o.rec.record(&o.rec.snapshot, true, map[string]any{"op": "save", "last_seq": hdr.LastSeq,
		"bytes": hdr.BodyBytes, "duration_ms": took.Milliseconds()})
	log.Notice().Uint64("last_seq", hdr.LastSeq).Int("bytes", hdr.BodyBytes).Dur("duration_ms", took).
		Msg("snapshot saved")
	return nil
}

// writeSnapshot writes the file and returns its header, or nil when there
// was nothing new to write.
func (o *Ops) writeSnapshot(ctx context.Context) (*SnapshotHeader, error) {
	last := o.views.LastSeq()
	if last == 0 || o.LossFound() || o.snapshotCurrent(ctx, last) {
		return nil, nil
	}
	body, seq, err := o.views.SnapshotSeq()
	if err != nil {
		return nil, fmt.Errorf("take snapshot: %w", err)
	}
	id, err := o.store.MsgID(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("take snapshot: %w", err)
	}
	hdr, line, err := NewSnapshotHeader(body, seq, id)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(SnapshotPath(o.cfg.DataDir), 0o600, line, body); err != nil {
		return nil, err
	}
	return hdr, nil
}

// NewSnapshotHeader returns the header of a snapshot body taken at seq,
// whose event has the id, and its line (newline included).
func NewSnapshotHeader(body []byte, seq uint64, id string) (*SnapshotHeader, []byte, error) {
	hdr := &SnapshotHeader{Format: snapshotFileFormat, CodeVersion: projections.CodeVersion, LastSeq: seq,
		LastMsgID: id, BodyBytes: len(body), Checksum: bodyChecksum(body), CreatedAt: time.Now().UTC()}
	line, err := json.Marshal(hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("encode snapshot header: %w", err)
	}
	return hdr, append(line, '\n'), nil
}

// snapshotCurrent reports whether the file already holds the state at
// last, taken by this code, at the event now stored at last.
func (o *Ops) snapshotCurrent(ctx context.Context, last uint64) bool {
	hdr, err := ReadSnapshotHeader(SnapshotPath(o.cfg.DataDir))
	if err != nil || hdr.Format != snapshotFileFormat || hdr.CodeVersion != projections.CodeVersion || hdr.LastSeq != last {
		return false
	}
	id, err := o.store.MsgID(ctx, last)
	return err == nil && id == hdr.LastMsgID
}

// ReadSnapshotHeader reads only the header line of a snapshot file.
func ReadSnapshotHeader(path string) (SnapshotHeader, error) {
	var hdr SnapshotHeader
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
func (o *Ops) saveSnapshotAtStop(ctx context.Context) {
	if o.svc == nil || !o.svc.Started() || o.svc.Err() != nil {
		return
	}
	_ = o.SaveSnapshot(ctx)
}

// removeTempSnapshots removes temp files a crash left behind. Only called
// at start, when no save runs.
func removeTempSnapshots(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempPattern(snapshotFile)))
	for _, name := range names {
		_ = os.Remove(name)
	}
}
