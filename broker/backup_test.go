package broker_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
)

// tokensStream is the stream behind the token KV bucket.
const tokensStream = broker.TokensStream

// storedMsg is what a test compares of a stored message.
type storedMsg struct {
	Subject string
	Data    string
}

// backupFixture is a server with events and a token bucket.
type backupFixture struct {
	b      *brokertest.Bundle
	store  *broker.EventStore
	tokens *broker.TokenStore
}

func newBackupFixture(t *testing.T) backupFixture {
	t.Helper()
	ctx := context.Background()
	b := brokertest.Start(t, 0)
	store, err := broker.OpenEventStore(ctx, b.Conn)
	require.NoError(t, err)
	tokens, err := broker.OpenTokens(ctx, b.Conn, b.Auth)
	require.NoError(t, err)
	return backupFixture{b: b, store: store, tokens: tokens}
}

// appendEvents appends n batches of two events, each on a new task.
func (f backupFixture) appendEvents(t *testing.T, prefix string, n int) {
	t.Helper()
	for i := range n {
		task := fmt.Sprintf("%s-%d", prefix, i)
		_, err := f.store.AppendAtomic(context.Background(), []broker.Append{
			{Subject: broker.TaskEvents(task), Events: events(task, 2)},
		})
		require.NoError(t, err)
	}
}

// streamContents reads every message of a stream by sequence.
func streamContents(t *testing.T, nc *nats.Conn, name string) map[uint64]storedMsg {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctx, name)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	out := map[uint64]storedMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		out[seq] = storedMsg{Subject: m.Subject, Data: string(m.Data)}
	}
	return out
}

// tokenValue reads a raw token record from the bucket.
func tokenValue(t *testing.T, nc *nats.Conn, key string) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, broker.TokensBucket)
	require.NoError(t, err)
	e, err := kv.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

func TestBackupRestoreSameServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newBackupFixture(t)
	f.appendEvents(t, "before", 5)
	_, _, err := f.tokens.CreateAgent(ctx, "agent-1")
	require.NoError(t, err)
	wantEvents := streamContents(t, f.b.Conn, broker.EventsStream)
	wantToken, err := tokenValue(t, f.b.Conn, "agent.agent-1")
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "backups")
	bf, err := broker.Backup(ctx, f.b.Conn, dir, []string{broker.EventsStream, tokensStream})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, bf.Name), bf.Path)
	require.Regexp(t, `^agentcom-backup-\d{8}T\d{6}\.\d{3}Z\.tar$`, bf.Name)
	st, err := os.Stat(bf.Path)
	require.NoError(t, err)
	require.Equal(t, st.Size(), bf.Size)
	require.Equal(t, []string{
		broker.EventsStream + "/meta.json", broker.EventsStream + "/snapshot",
		tokensStream + "/meta.json", tokensStream + "/snapshot",
	}, tarNames(t, bf.Path))
	dirInfo, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dirInfo.Mode().Perm())

	// Changes after the backup: more events, a rotated and a new token.
	f.appendEvents(t, "after", 3)
	_, _, err = f.tokens.CreateAgent(ctx, "agent-1")
	require.NoError(t, err)
	_, _, err = f.tokens.CreateAgent(ctx, "agent-2")
	require.NoError(t, err)
	changed, err := tokenValue(t, f.b.Conn, "agent.agent-1")
	require.NoError(t, err)
	require.NotEqual(t, wantToken, changed)

	restored, err := broker.Restore(ctx, f.b.Conn, bf.Path)
	require.NoError(t, err)
	require.Equal(t, []string{broker.EventsStream, tokensStream}, restored)

	require.Equal(t, wantEvents, streamContents(t, f.b.Conn, broker.EventsStream))
	got, err := tokenValue(t, f.b.Conn, "agent.agent-1")
	require.NoError(t, err)
	require.Equal(t, wantToken, got)
	_, err = tokenValue(t, f.b.Conn, "agent.agent-2")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
}

func TestBackupRestoreIntoFreshServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newBackupFixture(t)
	f.appendEvents(t, "task", 4)
	_, _, err := f.tokens.CreateAgent(ctx, "agent-1")
	require.NoError(t, err)
	wantEvents := streamContents(t, f.b.Conn, broker.EventsStream)
	wantToken, err := tokenValue(t, f.b.Conn, "agent.agent-1")
	require.NoError(t, err)
	bf, err := broker.Backup(ctx, f.b.Conn, t.TempDir(), []string{broker.EventsStream, tokensStream})
	require.NoError(t, err)

	fresh := brokertest.Start(t, 0)
	restored, err := broker.Restore(ctx, fresh.Conn, bf.Path)
	require.NoError(t, err)
	require.Equal(t, []string{broker.EventsStream, tokensStream}, restored)
	require.Equal(t, wantEvents, streamContents(t, fresh.Conn, broker.EventsStream))
	got, err := tokenValue(t, fresh.Conn, "agent.agent-1")
	require.NoError(t, err)
	require.Equal(t, wantToken, got)

	// The restored event store takes appends where the old one stopped.
	store, err := broker.OpenEventStore(ctx, fresh.Conn)
	require.NoError(t, err)
	seqs, err := store.AppendAtomic(ctx, []broker.Append{{Subject: broker.TaskEvents("next"), Events: events("next", 1)}})
	require.NoError(t, err)
	require.Equal(t, []uint64{uint64(len(wantEvents) + 1)}, seqs)
}

// loadPublisher publishes "1", "2", ... on a test stream, one at a time,
// until stopped; published counts the acknowledged ones.
type loadPublisher struct {
	published atomic.Uint64
	stop      chan struct{}
	failed    atomic.Bool
	done      sync.WaitGroup
	err       error // read after done
}

func startLoad(t *testing.T, nc *nats.Conn, subject string) *loadPublisher {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	p := &loadPublisher{stop: make(chan struct{})}
	p.done.Go(func() {
		for i := uint64(1); ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			if _, err := js.Publish(context.Background(), subject, []byte(strconv.FormatUint(i, 10))); err != nil {
				p.err = err
				p.failed.Store(true)
				return
			}
			p.published.Store(i)
		}
	})
	return p
}

func (p *loadPublisher) waitFor(t *testing.T, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return p.published.Load() >= n || p.failed.Load() }, 10*time.Second, time.Millisecond)
}

func (p *loadPublisher) finish(t *testing.T) uint64 {
	t.Helper()
	close(p.stop)
	p.done.Wait()
	require.NoError(t, p.err)
	return p.published.Load()
}

func TestBackupUnderLoadRestoresAConsistentPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := brokertest.Start(t, 0)
	js, err := jetstream.New(b.Conn)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "LOAD", Subjects: []string{"load.>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)

	pub := startLoad(t, b.Conn, "load.x")
	pub.waitFor(t, 200)
	before := pub.published.Load()
	bf, err := broker.Backup(ctx, b.Conn, t.TempDir(), []string{"LOAD"})
	require.NoError(t, err)
	// Writes go on after the backup; the restore must drop them.
	pub.waitFor(t, pub.published.Load()+50)
	total := pub.finish(t)

	restored, err := broker.Restore(ctx, b.Conn, bf.Path)
	require.NoError(t, err)
	require.Equal(t, []string{"LOAD"}, restored)
	got := streamContents(t, b.Conn, "LOAD")
	n := uint64(len(got))
	require.GreaterOrEqual(t, n, before, "everything acknowledged before the backup is in it")
	require.Less(t, n, total)
	for seq := uint64(1); seq <= n; seq++ {
		require.Equal(t, storedMsg{Subject: "load.x", Data: strconv.FormatUint(seq, 10)}, got[seq], "seq %d", seq)
	}
}

func TestListAndPruneBackupsKeepNewest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newBackupFixture(t)
	f.appendEvents(t, "task", 1)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a backup"), 0o600))

	var made []broker.BackupFile
	for range 4 {
		bf, err := broker.Backup(ctx, f.b.Conn, dir, []string{broker.EventsStream})
		require.NoError(t, err)
		made = append(made, bf)
	}
	list, err := broker.ListBackups(dir)
	require.NoError(t, err)
	require.Len(t, list, 4)
	for i := range list {
		require.Equal(t, made[len(made)-1-i], list[i], "newest first")
	}

	deleted, err := broker.PruneBackups(dir, 2)
	require.NoError(t, err)
	require.Equal(t, list[2:], deleted)
	after, err := broker.ListBackups(dir)
	require.NoError(t, err)
	require.Equal(t, list[:2], after)
	for _, bf := range deleted {
		require.NoFileExists(t, bf.Path)
	}
	require.FileExists(t, filepath.Join(dir, "notes.txt"))

	deleted, err = broker.PruneBackups(dir, 5)
	require.NoError(t, err)
	require.Empty(t, deleted)
	_, err = broker.PruneBackups(dir, -1)
	require.Error(t, err)
	missing, err := broker.ListBackups(filepath.Join(dir, "none"))
	require.NoError(t, err)
	require.Empty(t, missing)
}

func TestBackupMissingStreamFailsNamingIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newBackupFixture(t)
	f.appendEvents(t, "task", 1)
	dir := t.TempDir()

	_, err := broker.Backup(ctx, f.b.Conn, dir, []string{broker.EventsStream, "NO_SUCH_STREAM"})
	require.ErrorContains(t, err, "NO_SUCH_STREAM")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "no backup and no temp file is left")

	_, err = broker.Backup(ctx, f.b.Conn, dir, nil)
	require.Error(t, err)
	_, err = broker.Backup(ctx, f.b.Conn, dir, []string{broker.EventsStream, broker.EventsStream})
	require.ErrorContains(t, err, "named twice")
}

func TestRestoreRefusesAFileThatIsNotABackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newBackupFixture(t)
	f.appendEvents(t, "task", 2)
	want := streamContents(t, f.b.Conn, broker.EventsStream)
	dir := t.TempDir()

	text := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(text, []byte("hello, I am not a tar file\n"), 0o600))
	otherTar := filepath.Join(dir, "other.tar")
	writeTar(t, otherTar, map[string]string{"hello.txt": "hi"})
	noSnapshot := filepath.Join(dir, "agentcom-backup-20250101T000000.000Z.tar")
	writeTar(t, noSnapshot, map[string]string{broker.EventsStream + "/meta.json": `{"config":{"name":"` + broker.EventsStream + `"},"state":{}}`})
	empty := filepath.Join(dir, "empty.tar")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	for _, p := range []string{text, otherTar, noSnapshot, empty} {
		names, err := broker.Restore(ctx, f.b.Conn, p)
		require.ErrorIs(t, err, broker.ErrNotBackup, p)
		require.ErrorContains(t, err, p)
		require.Empty(t, names)
	}
	_, err := broker.Restore(ctx, f.b.Conn, filepath.Join(dir, "missing.tar"))
	require.ErrorIs(t, err, os.ErrNotExist)
	// Nothing was touched.
	require.Equal(t, want, streamContents(t, f.b.Conn, broker.EventsStream))
}

func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	out, err := os.Create(path)
	require.NoError(t, err)
	defer out.Close()
	tw := tar.NewWriter(out)
	for name, body := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body))}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	var names []string
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
	}
}
