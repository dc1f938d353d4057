package broker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/atomicfile"
)

// Backup files: one tar per backup, named by its UTC creation time, with
// per stream a "<stream>/meta.json" entry (config and state as the server
// returned them) and a "<stream>/snapshot" entry (the server's snapshot
// bytes, already compressed, written as sent).
const (
	backupPrefix     = "agentcom-backup-"
	backupExt        = ".tar"
	backupTimeLayout = "20060102T150405.000Z"
	backupMetaEntry  = "meta.json"
	backupSnapEntry  = "snapshot"
)

// Protocol tuning. The server gives up on a snapshot whose chunks are not
// acknowledged within 5s and on a restore that sends nothing for 5s.
const (
	snapshotChunkSize    = 128 << 10
	snapshotChunkTimeout = 30 * time.Second
	restoreChunkTimeout  = 30 * time.Second
	restoreFinishTimeout = 10 * time.Minute
	statusHeader         = "Status"
	descriptionHeader    = "Description"
	snapshotEndOK        = "204"
)

// ErrNotBackup means a file is not an AgentCom backup.
var ErrNotBackup = errors.New("not an AgentCom backup")

// BackupFile is one backup on disk.
type BackupFile struct {
	Path      string
	Name      string
	CreatedAt time.Time
	Size      int64
}

// streamMeta is a stream's meta.json entry: its config and state exactly
// as the server returned them with the snapshot.
type streamMeta struct {
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

// Backup snapshots each named stream, one after another (each snapshot is
// consistent: the stream as it was when the server started it), into one
// new file in dir, created 0700 if needed. The file appears under its
// final name only once complete and synced. A stream that does not exist
// fails the whole backup.
func Backup(ctx context.Context, nc *nats.Conn, dir string, streams []string) (BackupFile, error) {
	return BackupAt(ctx, nc, dir, streams, time.Now())
}

// BackupAt is Backup with the creation time given: the time the file is
// named by, which is what a schedule reads back (see ListBackups).
func BackupAt(ctx context.Context, nc *nats.Conn, dir string, streams []string, at time.Time) (BackupFile, error) {
	if err := checkStreamNames(streams); err != nil {
		return BackupFile{}, fmt.Errorf("back up streams: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupFile{}, fmt.Errorf("create backup dir: %w", err)
	}
	created := at.UTC().Truncate(time.Millisecond)
	tmp, err := os.CreateTemp(dir, ".tmp-"+backupPrefix+"*")
	if err != nil {
		return BackupFile{}, fmt.Errorf("create backup file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := writeBackup(ctx, nc, tmp, streams, created); err != nil {
		return BackupFile{}, err
	}
	return publishBackup(tmp, dir, created)
}

// checkStreamNames refuses an empty list, duplicates and names that cannot
// be a stream (and so a single subject token and a single path element).
func checkStreamNames(streams []string) error {
	if len(streams) == 0 {
		return errors.New("no streams named")
	}
	seen := map[string]bool{}
	for _, s := range streams {
		if s == "" || strings.ContainsAny(s, ".*>/\\ \t\r\n") {
			return fmt.Errorf("invalid stream name %q", s)
		}
		if seen[s] {
			return fmt.Errorf("stream %s named twice", s)
		}
		seen[s] = true
	}
	return nil
}

// writeBackup writes the tar of every stream's snapshot to f and syncs it.
func writeBackup(ctx context.Context, nc *nats.Conn, f *os.File, streams []string, mod time.Time) error {
	tw := tar.NewWriter(f)
	for _, name := range streams {
		if err := backupStream(ctx, nc, tw, filepath.Dir(f.Name()), name, mod); err != nil {
			return fmt.Errorf("back up stream %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close backup archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync backup file: %w", err)
	}
	return nil
}

// backupStream snapshots one stream into a spool file (the tar header
// needs the size first) and adds its two entries to tw.
func backupStream(ctx context.Context, nc *nats.Conn, tw *tar.Writer, spoolDir, name string, mod time.Time) error {
	spool, err := os.CreateTemp(spoolDir, ".tmp-snapshot-*")
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	meta, err := snapshotStream(ctx, nc, name, spool)
	if err != nil {
		return err
	}
	if err := addEntry(tw, path.Join(name, backupMetaEntry), mod, bytes.NewReader(meta), int64(len(meta))); err != nil {
		return err
	}
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("measure spool file: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind spool file: %w", err)
	}
	return addEntry(tw, path.Join(name, backupSnapEntry), mod, spool, size)
}

// addEntry writes one regular file entry of the given size.
func addEntry(tw *tar.Writer, name string, mod time.Time, r io.Reader, size int64) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: size, ModTime: mod, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write entry %s: %w", name, err)
	}
	if _, err := io.CopyN(tw, r, size); err != nil {
		return fmt.Errorf("write entry %s: %w", name, err)
	}
	return nil
}

// publishBackup gives the complete temp file its final name (one not yet
// taken: a clash moves the time on by a millisecond) and syncs the dir.
func publishBackup(tmp *os.File, dir string, created time.Time) (BackupFile, error) {
	info, err := tmp.Stat()
	if err != nil {
		return BackupFile{}, fmt.Errorf("stat backup file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return BackupFile{}, fmt.Errorf("close backup file: %w", err)
	}
	final, created := freeBackupName(dir, created)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return BackupFile{}, fmt.Errorf("rename backup file: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return BackupFile{}, err
	}
	return BackupFile{Path: final, Name: filepath.Base(final), CreatedAt: created, Size: info.Size()}, nil
}

func freeBackupName(dir string, t time.Time) (string, time.Time) {
	for {
		p := filepath.Join(dir, backupName(t))
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, t
		}
		t = t.Add(time.Millisecond)
	}
}

func backupName(t time.Time) string {
	return backupPrefix + t.UTC().Format(backupTimeLayout) + backupExt
}

// snapshotStream asks the server for a snapshot of one stream delivered to
// a fresh inbox, copies the chunks to w, and returns the meta.json bytes.
func snapshotStream(ctx context.Context, nc *nats.Conn, name string, w io.Writer) ([]byte, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe snapshot inbox: %w", err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("set snapshot inbox limits: %w", err)
	}
	meta, err := requestSnapshot(ctx, nc, name, inbox)
	if err != nil {
		return nil, err
	}
	if err := receiveSnapshot(ctx, nc, sub, w); err != nil {
		return nil, err
	}
	return meta, nil
}

type snapshotRequest struct {
	DeliverSubject string `json:"deliver_subject"`
	ChunkSize      int    `json:"chunk_size,omitempty"`
}

type snapshotResponse struct {
	Error  *jetstream.APIError `json:"error,omitempty"`
	Config json.RawMessage     `json:"config,omitempty"`
	State  json.RawMessage     `json:"state,omitempty"`
}

// requestSnapshot starts the snapshot; the server answers with the
// stream's config and state, then streams chunks to inbox.
func requestSnapshot(ctx context.Context, nc *nats.Conn, name, inbox string) ([]byte, error) {
	req, err := json.Marshal(snapshotRequest{DeliverSubject: inbox, ChunkSize: snapshotChunkSize})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot request: %w", err)
	}
	var resp snapshotResponse
	if err := apiRequest(ctx, nc, fmt.Sprintf(jsSnapshotT, name), req, &resp); err != nil {
		return nil, fmt.Errorf("request snapshot: %w", err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("request snapshot: %w", resp.Error)
	}
	meta, err := json.MarshalIndent(streamMeta{Config: resp.Config, State: resp.State}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode stream meta: %w", err)
	}
	return meta, nil
}

// receiveSnapshot copies chunks to w, acknowledging each that asks for it
// (the server keeps a window of unacknowledged chunks), until the empty
// end marker, whose status says whether the snapshot completed.
func receiveSnapshot(ctx context.Context, nc *nats.Conn, sub *nats.Subscription, w io.Writer) error {
	var total int
	for {
		msg, err := nextChunk(ctx, sub)
		if err != nil {
			return err
		}
		if len(msg.Data) == 0 {
			return snapshotEnd(msg, total)
		}
		if _, err := w.Write(msg.Data); err != nil {
			return fmt.Errorf("write snapshot chunk: %w", err)
		}
		total += len(msg.Data)
		if msg.Reply != "" {
			if err := nc.Publish(msg.Reply, nil); err != nil {
				return fmt.Errorf("acknowledge snapshot chunk: %w", err)
			}
		}
	}
}

func nextChunk(ctx context.Context, sub *nats.Subscription) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, snapshotChunkTimeout)
	defer cancel()
	msg, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("receive snapshot chunk: %w", err)
	}
	return msg, nil
}

// snapshotEnd reads the end marker: status 204 means complete.
func snapshotEnd(msg *nats.Msg, total int) error {
	status := msg.Header.Get(statusHeader)
	if status != "" && status != snapshotEndOK {
		return fmt.Errorf("receive snapshot: server ended it with status %s %s", status, msg.Header.Get(descriptionHeader))
	}
	if total == 0 {
		return errors.New("receive snapshot: server sent no data")
	}
	return nil
}

// apiRequest sends one JetStream API request and decodes the answer.
func apiRequest(ctx context.Context, nc *nats.Conn, subject string, body []byte, out any) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return fmt.Errorf("send %s: %w", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("decode %s reply: %w", subject, err)
	}
	return nil
}

// backupEntry is one stream found in a backup file.
type backupEntry struct {
	stream string
	meta   streamMeta
}

// Restore replaces every stream in the backup file at path with its
// backed-up copy: it deletes the stream if it exists, then restores it
// through the server's restore API. It returns the restored streams in
// file order. The whole file is checked before any stream is touched; a
// file that is not a backup is refused (ErrNotBackup). A failure part way
// leaves the streams before it restored and the failing one possibly gone.
func Restore(ctx context.Context, nc *nats.Conn, path string) ([]string, error) {
	entries, err := readBackupIndex(path)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open backup %s: %w", path, err)
	}
	defer f.Close()
	return restoreEntries(ctx, nc, js, tar.NewReader(f), entries)
}

// restoreEntries walks the (already checked) archive and restores each
// stream from its snapshot entry.
func restoreEntries(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, tr *tar.Reader, entries []backupEntry) ([]string, error) {
	var done []string
	for _, e := range entries {
		if err := seekEntry(tr, path.Join(e.stream, backupSnapEntry)); err != nil {
			return done, err
		}
		if err := restoreStream(ctx, nc, js, e, tr); err != nil {
			return done, fmt.Errorf("restore stream %s: %w", e.stream, err)
		}
		done = append(done, e.stream)
	}
	return done, nil
}

func seekEntry(tr *tar.Reader, name string) error {
	for {
		hdr, err := tr.Next()
		if err != nil {
			return fmt.Errorf("find entry %s: %w", name, err)
		}
		if hdr.Name == name {
			return nil
		}
	}
}

// readBackupIndex checks that path is a backup: a tar of, per stream, a
// meta.json naming that stream followed by its snapshot, at least one.
func readBackupIndex(path string) ([]backupEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open backup %s: %w", path, err)
	}
	defer f.Close()
	entries, err := indexArchive(tar.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("read backup %s: %w: %w", path, ErrNotBackup, err)
	}
	return entries, nil
}

func indexArchive(tr *tar.Reader) ([]backupEntry, error) {
	var entries []backupEntry
	for {
		e, err := indexStream(tr)
		if errors.Is(err, io.EOF) && len(entries) > 0 {
			return entries, nil
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("read archive: no streams in it")
		}
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
}

// indexStream reads one stream's pair of entries; io.EOF at a clean end.
func indexStream(tr *tar.Reader) (backupEntry, error) {
	hdr, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return backupEntry{}, io.EOF
	}
	if err != nil {
		return backupEntry{}, fmt.Errorf("read archive: %w", err)
	}
	stream, file := path.Split(hdr.Name)
	stream = strings.TrimSuffix(stream, "/")
	if file != backupMetaEntry || checkStreamNames([]string{stream}) != nil {
		return backupEntry{}, fmt.Errorf("read archive: unexpected entry %q", hdr.Name)
	}
	meta, err := readMeta(tr, stream)
	if err != nil {
		return backupEntry{}, err
	}
	if err := expectSnapshot(tr, stream); err != nil {
		return backupEntry{}, err
	}
	return backupEntry{stream: stream, meta: meta}, nil
}

func readMeta(tr *tar.Reader, stream string) (streamMeta, error) {
	var meta streamMeta
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&meta); err != nil {
		return streamMeta{}, fmt.Errorf("decode %s meta: %w", stream, err)
	}
	var cfg struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(meta.Config, &cfg); err != nil {
		return streamMeta{}, fmt.Errorf("decode %s config: %w", stream, err)
	}
	if cfg.Name != stream || len(meta.State) == 0 {
		return streamMeta{}, fmt.Errorf("check %s meta: config names stream %q", stream, cfg.Name)
	}
	return meta, nil
}

func expectSnapshot(tr *tar.Reader, stream string) error {
	want := path.Join(stream, backupSnapEntry)
	hdr, err := tr.Next()
	if err != nil {
		return fmt.Errorf("find entry %s: %w", want, err)
	}
	if hdr.Name != want || hdr.Size == 0 {
		return fmt.Errorf("find entry %s: found %q (%d bytes)", want, hdr.Name, hdr.Size)
	}
	// Read through the data so a truncated file is caught now.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("read entry %s: %w", want, err)
	}
	return nil
}

// restoreStream deletes the stream if it exists, then restores it: the
// restore request returns a subject to send chunks to; each chunk is a
// request acknowledged by an empty reply; an empty chunk ends the data and
// its reply is the outcome.
func restoreStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, e backupEntry, snapshot io.Reader) error {
	if err := js.DeleteStream(ctx, e.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream: %w", err)
	}
	deliver, err := startRestore(ctx, nc, e)
	if err != nil {
		return err
	}
	if err := sendChunks(ctx, nc, deliver, snapshot); err != nil {
		return err
	}
	return finishRestore(ctx, nc, deliver, e.meta)
}

type restoreRequest struct {
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

type restoreResponse struct {
	Error          *jetstream.APIError `json:"error,omitempty"`
	DeliverSubject string              `json:"deliver_subject"`
}

func startRestore(ctx context.Context, nc *nats.Conn, e backupEntry) (string, error) {
	req, err := json.Marshal(restoreRequest(e.meta))
	if err != nil {
		return "", fmt.Errorf("encode restore request: %w", err)
	}
	var resp restoreResponse
	if err := apiRequest(ctx, nc, fmt.Sprintf(jsRestoreT, e.stream), req, &resp); err != nil {
		return "", fmt.Errorf("request restore: %w", err)
	}
	if resp.Error != nil {
		return "", fmt.Errorf("request restore: %w", resp.Error)
	}
	if resp.DeliverSubject == "" {
		return "", errors.New("request restore: server gave no deliver subject")
	}
	return resp.DeliverSubject, nil
}

// restoreResult is the server's final answer to a restore (a stream
// create response: the stream info is inlined) or a chunk's error.
type restoreResult struct {
	Error *jetstream.APIError `json:"error,omitempty"`
	State *endState           `json:"state,omitempty"`
}

// endState is the part of a stream's state a restore is checked against.
type endState struct {
	Msgs    uint64 `json:"messages"`
	LastSeq uint64 `json:"last_seq"`
}

func sendChunks(ctx context.Context, nc *nats.Conn, deliver string, r io.Reader) error {
	buf := make([]byte, snapshotChunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := sendChunk(ctx, nc, deliver, buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
	}
}

// sendChunk sends one chunk and waits for its acknowledgement: an empty
// reply, or an error response.
func sendChunk(ctx context.Context, nc *nats.Conn, deliver string, chunk []byte) error {
	ctx, cancel := context.WithTimeout(ctx, restoreChunkTimeout)
	defer cancel()
	reply, err := nc.RequestWithContext(ctx, deliver, chunk)
	if err != nil {
		return fmt.Errorf("send restore chunk: %w", err)
	}
	if len(reply.Data) == 0 {
		return nil
	}
	var res restoreResult
	if err := json.Unmarshal(reply.Data, &res); err != nil {
		return fmt.Errorf("decode chunk reply: %w", err)
	}
	if res.Error != nil {
		return fmt.Errorf("send restore chunk: %w", res.Error)
	}
	return nil
}

// finishRestore sends the end marker, waits for the server to finish, and
// checks the restored stream ends where the backed-up one did.
func finishRestore(ctx context.Context, nc *nats.Conn, deliver string, meta streamMeta) error {
	ctx, cancel := context.WithTimeout(ctx, restoreFinishTimeout)
	defer cancel()
	var res restoreResult
	if err := apiRequest(ctx, nc, deliver, nil, &res); err != nil {
		return fmt.Errorf("finish restore: %w", err)
	}
	if res.Error != nil {
		return fmt.Errorf("finish restore: %w", res.Error)
	}
	if res.State == nil {
		return errors.New("finish restore: server returned no stream state")
	}
	return checkRestored(meta, *res.State)
}

// checkRestored compares the restored stream's end with the backup's.
func checkRestored(meta streamMeta, got endState) error {
	var want endState
	if err := json.Unmarshal(meta.State, &want); err != nil {
		return fmt.Errorf("decode backed-up state: %w", err)
	}
	if want != got {
		return fmt.Errorf("check restored stream: %d messages up to %d, backup had %d up to %d", got.Msgs, got.LastSeq, want.Msgs, want.LastSeq)
	}
	return nil
}

// ListBackups returns the backups in dir, newest first. A missing dir has
// none. Files not named like a backup are not listed.
func ListBackups(dir string) ([]BackupFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []BackupFile
	for _, ent := range ents {
		bf, ok, err := backupFileOf(dir, ent)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, bf)
		}
	}
	slices.SortFunc(out, func(a, b BackupFile) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// backupFileOf describes ent if it is a regular file named like a backup.
func backupFileOf(dir string, ent fs.DirEntry) (BackupFile, bool, error) {
	name := ent.Name()
	stamp, ok := strings.CutPrefix(name, backupPrefix)
	stamp, ok2 := strings.CutSuffix(stamp, backupExt)
	if !ok || !ok2 || !ent.Type().IsRegular() {
		return BackupFile{}, false, nil
	}
	created, err := time.Parse(backupTimeLayout, stamp)
	if err != nil {
		return BackupFile{}, false, nil
	}
	info, err := ent.Info()
	if err != nil {
		return BackupFile{}, false, fmt.Errorf("stat backup %s: %w", name, err)
	}
	return BackupFile{Path: filepath.Join(dir, name), Name: name, CreatedAt: created.UTC(), Size: info.Size()}, true, nil
}

// PruneBackups deletes all but the newest keep backups in dir and returns
// the ones it deleted.
func PruneBackups(dir string, keep int) ([]BackupFile, error) {
	if keep < 0 {
		return nil, fmt.Errorf("prune backups: keep %d is negative", keep)
	}
	all, err := ListBackups(dir)
	if err != nil {
		return nil, err
	}
	var deleted []BackupFile
	for _, bf := range all[min(keep, len(all)):] {
		if err := os.Remove(bf.Path); err != nil {
			return deleted, fmt.Errorf("delete backup %s: %w", bf.Name, err)
		}
		deleted = append(deleted, bf)
	}
	return deleted, nil
}
