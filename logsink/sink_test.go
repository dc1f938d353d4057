package logsink_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
)

const waitFor = 30 * time.Second

// startLogs runs a server with the LOGS stream. Log records need no fsync
// per write, so the store syncs every second.
func startLogs(tb testing.TB) (*brokertest.Bundle, jetstream.Stream) {
	tb.Helper()
	b := brokertest.Start(tb, time.Second)
	st, err := broker.OpenLogs(context.Background(), b.Conn, 64<<20)
	require.NoError(tb, err)
	return b, st
}

// record is a typical log line of about 300 bytes, newline included.
func record(i int) []byte {
	return fmt.Appendf(nil, `{"time":"2025-06-01T12:00:00.123456789Z","severity":"info",`+
		`"message":"task progress","module":"coordinator","function":"hub.(*Coordinator).progress",`+
		`"line":123,"pid":4242,"node":"n1","agent_id":"agent-007","task_id":"task-%08d",`+
		`"request_id":"req-0123456789abcdef","detail":"step 3 of 7 done, 42 files"}`+"\n", i)
}

// publish writes lines record(from) to record(from+n-1) through pub
// (which gathers them into records of several lines) and waits until the
// stream has stored them.
func publish(tb testing.TB, pub *logsink.Publisher, from, n int) {
	tb.Helper()
	for i := from; i < from+n; i++ {
		_, err := pub.Write(record(i))
		require.NoError(tb, err)
	}
	require.NoError(tb, pub.Stored(context.Background()))
}

// publishEach publishes record(0) to record(n-1) one per message, as a
// client other than the Publisher may: record(i) is stream sequence i+1.
func publishEach(tb testing.TB, b *brokertest.Bundle, st jetstream.Stream, n int) {
	tb.Helper()
	for i := range n {
		require.NoError(tb, b.Conn.Publish(broker.LogHub("n1"), bytes.TrimSpace(record(i))))
	}
	waitStored(tb, st, uint64(n))
}

func waitStored(tb testing.TB, st jetstream.Stream, total uint64) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		info, err := st.Info(context.Background())
		return err == nil && info.State.LastSeq >= total
	}, waitFor, 5*time.Millisecond)
}

func startSink(tb testing.TB, st jetstream.Stream, cfg logsink.SinkConfig) (*logsink.Sink, context.CancelFunc) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	s := logsink.NewSink(st, cfg)
	require.NoError(tb, s.Start(ctx))
	tb.Cleanup(s.Stop)
	return s, cancel
}

// backups lists the rotated files, oldest first.
func backups(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "agentcom-*.log*"))
	require.NoError(t, err)
	sort.Strings(names) // the UTC timestamps sort as text
	return names
}

// fileLines reads a log file, gunzipping a .gz one.
func fileLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = buf.ReadFrom(zr)
		require.NoError(t, err)
		data = buf.Bytes()
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	require.NoError(t, sc.Err())
	require.True(t, len(data) == 0 || data[len(data)-1] == '\n', "%s ends mid-line", path)
	return lines
}

// allLines reads the backups, oldest first, then the current file.
func allLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	// lumberjack compresses backups in the background: read once every
	// backup is compressed, or a file may vanish between glob and read.
	require.Eventually(t, func() bool {
		plain, err := filepath.Glob(filepath.Join(dir, "agentcom-*.log"))
		return err == nil && len(plain) == 0
	}, waitFor, 5*time.Millisecond, "backups still being compressed")
	var lines [][]byte
	for _, path := range append(backups(t, dir), filepath.Join(dir, logsink.LogFileName)) {
		lines = append(lines, fileLines(t, path)...)
	}
	return lines
}

// seqs decodes every line as a JSON object and returns their log_seqs.
func seqs(t *testing.T, lines [][]byte) []uint64 {
	t.Helper()
	out := make([]uint64, 0, len(lines))
	for _, line := range lines {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(line, &m), "%s", line)
		var seq uint64
		require.NoError(t, json.Unmarshal(m["log_seq"], &seq), "%s", line)
		out = append(out, seq)
	}
	return out
}

// lineNumbers checks that the lines' positions (log_seq, then log_line,
// 0 when absent) only go up, and returns the number i of each line's
// record(i) (from its task id).
func lineNumbers(t *testing.T, lines [][]byte) []uint64 {
	t.Helper()
	out := make([]uint64, 0, len(lines))
	var lastSeq, lastLine uint64
	for _, line := range lines {
		var m struct {
			TaskID  string `json:"task_id"`
			LogSeq  uint64 `json:"log_seq"`
			LogLine uint64 `json:"log_line"`
		}
		require.NoError(t, json.Unmarshal(line, &m), "%s", line)
		require.True(t, m.LogSeq > lastSeq || m.LogSeq == lastSeq && m.LogLine > lastLine || len(out) == 0,
			"position %d/%d after %d/%d: %s", m.LogSeq, m.LogLine, lastSeq, lastLine, line)
		lastSeq, lastLine = m.LogSeq, m.LogLine
		var i uint64
		_, err := fmt.Sscanf(m.TaskID, "task-%d", &i)
		require.NoError(t, err, "%s", line)
		out = append(out, i)
	}
	return out
}

// requireRange checks got is exactly first..last, in order.
func requireRange(t *testing.T, got []uint64, first, last uint64) {
	t.Helper()
	for i, seq := range got {
		if seq != first+uint64(i) {
			t.Logf("first gap at line %d: want %d, got %d (of %d lines)", i, first+uint64(i), seq, len(got))
			break
		}
	}
	require.Len(t, got, int(last-first+1))
	for i, seq := range got {
		require.Equal(t, first+uint64(i), seq, "line %d", i)
	}
}

func TestSinkConsumerIsTheBrokersDurable(t *testing.T) {
	t.Parallel()
	_, st := startLogs(t)
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: t.TempDir()})
	defer s.Stop()
	cons, err := st.Consumer(context.Background(), broker.LogSinkConsumer)
	require.NoError(t, err)
	cfg := cons.CachedInfo().Config
	require.Equal(t, broker.LogsAll, cfg.FilterSubject)
	require.Equal(t, jetstream.AckAllPolicy, cfg.AckPolicy)
	require.Equal(t, jetstream.DeliverAllPolicy, cfg.DeliverPolicy)
	require.Equal(t, 10000, cfg.MaxAckPending)
}

func TestSinkRotatesKeepingMaxBackupsCompressed(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	const n = 20000 // about 6 MB
	publish(t, logsink.NewPublisher(b.Conn, broker.LogHub("n1")), 0, n)
	dir := t.TempDir()
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir, MaxSizeMB: 1, MaxBackups: 2})
	s.Stop()
	require.EqualValues(t, n, s.Written())

	// lumberjack compresses and deletes in the background.
	require.Eventually(t, func() bool {
		names := backups(t, dir)
		for _, name := range names {
			if !strings.HasSuffix(name, ".log.gz") {
				return false
			}
		}
		return len(names) == 2
	}, waitFor, 10*time.Millisecond)

	for _, path := range append(backups(t, dir), filepath.Join(dir, logsink.LogFileName)) {
		if !strings.HasSuffix(path, ".gz") {
			info, err := os.Stat(path)
			require.NoError(t, err)
			require.LessOrEqual(t, info.Size(), int64(1<<20))
		}
	}
	got := lineNumbers(t, allLines(t, dir))
	require.NotEmpty(t, got)
	require.Greater(t, got[0], uint64(0), "older backups are deleted")
	requireRange(t, got, got[0], n-1)
}

func TestSinkKeepsEveryLineWithEnoughBackups(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	const n = 12000 // about 3.6 MB: four files
	publish(t, logsink.NewPublisher(b.Conn, broker.LogHub("n1")), 0, n)
	dir := t.TempDir()
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir, MaxSizeMB: 1, MaxBackups: 50})
	s.Stop()
	require.Eventually(t, func() bool {
		names := backups(t, dir)
		for _, name := range names {
			if !strings.HasSuffix(name, ".log.gz") {
				return false
			}
		}
		return len(names) == 3
	}, waitFor, 10*time.Millisecond)
	requireRange(t, lineNumbers(t, allLines(t, dir)), 0, n-1)
}

func TestSinkKilledMidStreamWritesEachRecordOnce(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	const n, more = 40000, 5000
	publish(t, pub, 0, n)
	dir := t.TempDir()
	cfg := logsink.SinkConfig{Dir: dir, MaxSizeMB: 2, MaxBackups: 100}

	first, crash := startSink(t, st, cfg)
	require.Eventually(t, func() bool { return first.Written() >= n/2 }, waitFor, time.Millisecond)
	crash()
	require.Eventually(t, func() bool { return isClosed(first.Done()) }, waitFor, time.Millisecond)
	t.Logf("the first sink wrote %d of %d before the crash", first.Written(), n)

	publish(t, pub, n, more)
	second, _ := startSink(t, st, cfg)
	second.Stop()
	require.Equal(t, uint64(n+more), first.Written()+second.Written())
	requireRange(t, lineNumbers(t, allLines(t, dir)), 0, n+more-1)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSinkResumesAfterTheNewestCompressedBackup(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	const n, already = 100, 60
	publishEach(t, b, st, n)
	dir := t.TempDir()
	// As after a rotation: an empty current file, an older and a newer
	// compressed backup.
	writeGz(t, filepath.Join(dir, "agentcom-2025-06-01T10-00-00.000.log.gz"), 1, 30)
	writeGz(t, filepath.Join(dir, "agentcom-2025-06-01T11-00-00.000.log.gz"), 31, already)
	require.NoError(t, os.WriteFile(filepath.Join(dir, logsink.LogFileName), nil, 0o644))

	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir, MaxBackups: 10})
	s.Stop()
	requireRange(t, seqs(t, fileLines(t, filepath.Join(dir, logsink.LogFileName))), already+1, n)
}

func writeGz(t *testing.T, path string, from, to int) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := from; i <= to; i++ {
		_, err := fmt.Fprintf(zw, `{"message":"m","log_seq":%d}`+"\n", i)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func TestSinkEndsAPartialLastLineAndRewritesIt(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	const n = 10
	publishEach(t, b, st, n)
	dir := t.TempDir()
	path := filepath.Join(dir, logsink.LogFileName)
	// Killed while writing line 5: four whole lines and part of the fifth.
	var text []byte
	for i := 1; i <= 4; i++ {
		text = fmt.Appendf(text, `{"message":"m","log_seq":%d}`+"\n", i)
	}
	text = append(text, `{"message":"m","log_s`...)
	require.NoError(t, os.WriteFile(path, text, 0o644))

	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir})
	s.Stop()
	lines := fileLines(t, path)
	require.Equal(t, 4+1+(n-4), len(lines))
	require.Equal(t, `{"message":"m","log_s`, string(lines[4]))
	requireRange(t, seqs(t, append(lines[:4:4], lines[5:]...)), 1, n)
}

func TestSinkWrapsRecordsThatAreNotJSONObjects(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	records := []string{
		`not json`,
		`{"message":"fine"}`,
		`{}`,
		`[1,2]`,
		"{\"message\":\n  \"spread over lines\"}",
		`{"message":"truncated`,
		`{"message":"\u2028 <b>"}  `,
	}
	for _, r := range records {
		require.NoError(t, b.Conn.Publish(broker.LogAgent("a1"), []byte(r)))
	}
	waitStored(t, st, uint64(len(records)))
	dir := t.TempDir()
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir})
	s.Stop()

	lines := fileLines(t, filepath.Join(dir, logsink.LogFileName))
	require.Len(t, lines, len(records))
	requireRange(t, seqs(t, lines), 1, uint64(len(records)))
	require.Equal(t, `{"message":"fine","log_seq":2}`, string(lines[1]))
	require.Equal(t, `{"log_seq":3}`, string(lines[2]))
	require.Equal(t, `{"message":"spread over lines","log_seq":5}`, string(lines[4]))
	require.Equal(t, `{"message":"\u2028 <b>","log_seq":7}`, string(lines[6]))
	for _, i := range []int{0, 3, 5} {
		var m map[string]any
		require.NoError(t, json.Unmarshal(lines[i], &m))
		require.Equal(t, "warning", m["severity"])
		require.Equal(t, "unparseable log record", m["message"])
		logtest.RequireLine(t, lines[i])
		require.Equal(t, records[i], m["record"])
	}
}

func TestSinkReplacesALineTooLongForTheFile(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	big := fmt.Appendf(nil, `{"message":"big","pad":"%s"}`, strings.Repeat("x", 1<<20))
	require.NoError(t, b.Conn.Publish(broker.LogHub("n1"), big))
	require.NoError(t, b.Conn.Publish(broker.LogHub("n1"), []byte(`{"message":"after"}`)))
	waitStored(t, st, 2)
	dir := t.TempDir()
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir, MaxSizeMB: 1})
	s.Stop()
	lines := fileLines(t, filepath.Join(dir, logsink.LogFileName))
	require.Len(t, lines, 2)
	m := logtest.RequireLine(t, lines[0]) // the sink's own lines follow the schema too
	require.Equal(t, "oversized log record", m["message"])
	require.Equal(t, "warning", m["severity"])
	require.EqualValues(t, 1, m["log_seq"])
	require.EqualValues(t, len(big), m["bytes"])
	require.Equal(t, `{"message":"after","log_seq":2}`, string(lines[1]))
}

func TestSinkWritesLoggerLinesMatchingTheSchema(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	log := logsink.New(pub, "n1", logsink.LevelDebug).Module("test")
	for i := range 50 {
		log.Info().Str("task_id", fmt.Sprintf("task-%d", i)).Msg("task submitted")
	}
	require.NoError(t, pub.Stored(context.Background()))
	dir := t.TempDir()
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir})
	s.Stop()
	lines := fileLines(t, filepath.Join(dir, logsink.LogFileName))
	require.Len(t, lines, 50)
	for _, line := range lines {
		logtest.RequireLine(t, line)
	}
	requireRange(t, lineNumbers(t, lines), 0, 49)
}

func TestSinkStopWithoutStartAndTwice(t *testing.T) {
	t.Parallel()
	_, st := startLogs(t)
	s := logsink.NewSink(st, logsink.SinkConfig{Dir: t.TempDir()})
	s.Stop()
	require.NoError(t, s.Start(context.Background()))
	require.Error(t, s.Start(context.Background()))
	s.Stop()
	s.Stop()
	require.True(t, isClosed(s.Done()))
}

func TestSinkRestartedWritesOnlyNewRecords(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	dir := t.TempDir()
	cfg := logsink.SinkConfig{Dir: dir}
	publish(t, pub, 0, 100)
	s1, _ := startSink(t, st, cfg)
	s1.Stop()
	publish(t, pub, 100, 50)
	s2, _ := startSink(t, st, cfg)
	s2.Stop()
	require.EqualValues(t, 50, s2.Written())
	requireRange(t, lineNumbers(t, allLines(t, dir)), 0, 149)
}

// A sink told another file name resumes from that file and its backups.
func TestSinkResumesFromTheFileItIsGiven(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	const n, already = 100, 60
	publishEach(t, b, st, n)
	dir := t.TempDir()
	writeGz(t, filepath.Join(dir, "sidecar-2025-06-01T11-00-00.000.log.gz"), 1, already)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sidecar.log"), nil, 0o644))

	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir, File: "sidecar.log", MaxBackups: 10})
	s.Stop()
	requireRange(t, seqs(t, fileLines(t, filepath.Join(dir, "sidecar.log"))), already+1, n)
	require.NoFileExists(t, filepath.Join(dir, logsink.LogFileName))
}

// A sink killed in the middle of a record's lines writes the rest of that
// record, and nothing of it twice, when started again.
func TestSinkResumesInsideARecordOfSeveralLines(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	var rec []byte
	for i := range 5 {
		rec = append(rec, record(i)...)
	}
	require.NoError(t, b.Conn.Publish(broker.LogHub("n1"), bytes.TrimSuffix(rec, []byte("\n"))))
	require.NoError(t, b.Conn.Publish(broker.LogHub("n1"), bytes.TrimSpace(record(5))))
	waitStored(t, st, 2)
	dir := t.TempDir()
	path := filepath.Join(dir, logsink.LogFileName)
	// The first sink wrote lines 0 to 2 of record 1 and part of line 3.
	first := logsink.NewSink(st, logsink.SinkConfig{Dir: dir})
	require.NoError(t, first.Start(context.Background()))
	first.Stop()
	lines := fileLines(t, path)
	require.Len(t, lines, 6)
	require.Contains(t, string(lines[1]), `"log_seq":1,"log_line":1}`)
	require.Contains(t, string(lines[5]), `"log_seq":2}`)
	kept := append(bytes.Join(lines[:3], []byte("\n")), '\n')
	require.NoError(t, os.WriteFile(path, append(kept, lines[3][:40]...), 0o644))

	second, _ := startSink(t, st, logsink.SinkConfig{Dir: dir})
	second.Stop()
	require.EqualValues(t, 3, second.Written(), "lines 3 and 4 of record 1, and record 2")
	lines = fileLines(t, path)
	require.Len(t, lines, 7)
	requireRange(t, lineNumbers(t, slices.Delete(lines, 3, 4)), 0, 5)
}

// In a record of several lines, each line stands alone: one that is not
// a JSON object becomes a warning, the others are written as they are.
func TestSinkWrapsOneBadLineOfARecord(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	rec := `{"message":"one"}` + "\nnot json\n" + `{"message":"three"}`
	require.NoError(t, b.Conn.Publish(broker.LogHub("n1"), []byte(rec)))
	waitStored(t, st, 1)
	dir := t.TempDir()
	s, _ := startSink(t, st, logsink.SinkConfig{Dir: dir})
	s.Stop()
	lines := fileLines(t, filepath.Join(dir, logsink.LogFileName))
	require.Len(t, lines, 3)
	require.Equal(t, `{"message":"one","log_seq":1}`, string(lines[0]))
	m := logtest.RequireLine(t, lines[1])
	require.Equal(t, "unparseable log record", m["message"])
	require.Equal(t, "not json", m["record"])
	require.EqualValues(t, 1, m["log_line"])
	require.Equal(t, `{"message":"three","log_seq":1,"log_line":2}`, string(lines[2]))
}
