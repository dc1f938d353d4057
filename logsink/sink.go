package logsink

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/natefinch/lumberjack.v2"
)

// The sink's consumer. These repeat broker.LogSinkConsumer and
// broker.LogsAll (a test checks they agree): logsink cannot import broker,
// which imports logsink.
const (
	sinkConsumer = "logsink"
	sinkFilter   = "agentcom.log.>"
)

const (
	// LogFileName is the current log file in SinkConfig.Dir. Rotated files
	// are named agentcom-<UTC time>.log, gzip-compressed to .log.gz.
	LogFileName = "agentcom.log"

	defaultMaxSizeMB  = 10
	defaultMaxBackups = 5

	sinkMaxAckPending = 10000
	sinkPullBatch     = 1000                   // messages the iterator keeps buffered
	sinkAckEvery      = 500                    // ack (AckAll) at least this often
	sinkIdleWait      = 100 * time.Millisecond // ack and check Stop when idle this long
	sinkAPITimeout    = 10 * time.Second
	sinkRetryWait     = time.Second // between attempts of a failed file write

	backupTimeFormat = "2006-01-02T15-04-05.000" // lumberjack's
	seqKey           = `"log_seq":`
	lineKey          = `,"log_line":`
)

// SinkConfig says where the Sink writes and how it rotates.
type SinkConfig struct {
	// Dir holds agentcom.log and its rotated, compressed backups.
	Dir string
	// File is the log file's name in Dir (default agentcom.log).
	File string
	// MaxSizeMB is the size at which the file rotates (default 10).
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept (default 5); older
	// ones are deleted.
	MaxBackups int
}

// Sink writes the log records of the LOGS stream to <Dir>/agentcom.log,
// one JSON object per line, rotated by size (lumberjack). It reads the
// stream with a durable consumer and acknowledges a record only after
// writing it. A record holds one or more lines; each is written with its
// place added as its last fields: "log_seq", the record's stream
// sequence, and after a record's first line "log_line", its index there.
//
// The files are the sink's own record of progress: at Start it reads the
// last place written and resumes the consumer at that record, skipping
// its lines written already. So a sink that was killed at any point (even
// between a write and its ack, in the middle of a record, or with records
// delivered to it but not written) writes every line exactly once when
// started again, as long as the stream still holds it.
//
// One Sink, in one process, writes a directory at a time. (lumberjack
// assumes a single writer, and keeps one idle goroutine per Sink after
// the file is closed.)
type Sink struct {
	stream jetstream.Stream
	cfg    SinkConfig
	file   *lumberjack.Logger
	line   []byte // the line being built, reused

	mu       sync.Mutex
	started  bool
	done     chan struct{}
	stopCh   chan struct{}
	abandon  chan struct{} // closed when a bounded Stop runs out of time
	stopOnce sync.Once
	// abandonOnce closes abandon once.
	abandonOnce sync.Once
	stopping    atomic.Bool
	target      atomic.Uint64 // Stop drains up to this stream sequence

	written atomic.Uint64 // lines written by this Sink
	last    atomic.Uint64 // every record up to this sequence is in the files
	// partial is where the files end inside the first record resumed: its
	// lines up to partial.line are written already.
	partial position
}

// position is a line's place in the stream: its record's sequence and its
// index among the record's lines.
type position struct {
	seq  uint64
	line int
}

// writers holds the one rotating writer of each log file in the process.
var (
	writersMu sync.Mutex
	writers   = map[string]*lumberjack.Logger{}
)

// Writer returns the rotating writer of the log file. The sink writes
// with it; once the sink has stopped (which closes it), the hub appends
// the last lines of a shutdown, and a restarted hub's sink writes on.
// There is one writer per file in a process, made with the first
// settings asked for: lumberjack compresses backups in a goroutine per
// writer, and two writers on one directory race to compress the same
// backup, the loser deleting the winner's .gz (a whole file of lines).
func (c SinkConfig) Writer() *lumberjack.Logger {
	name := c.path()
	writersMu.Lock()
	defer writersMu.Unlock()
	if w, ok := writers[name]; ok {
		return w
	}
	w := &lumberjack.Logger{Filename: name, MaxSize: c.MaxSizeMB, MaxBackups: c.MaxBackups, Compress: true}
	writers[name] = w
	return w
}

// NewSink returns a sink of the LOGS stream (see broker.OpenLogs).
func NewSink(stream jetstream.Stream, cfg SinkConfig) *Sink {
	if cfg.MaxSizeMB <= 0 {
		cfg.MaxSizeMB = defaultMaxSizeMB
	}
	if cfg.MaxBackups <= 0 {
		cfg.MaxBackups = defaultMaxBackups
	}
	return &Sink{
		stream:  stream,
		cfg:     cfg,
		done:    make(chan struct{}),
		stopCh:  make(chan struct{}),
		abandon: make(chan struct{}),
	}
}

// Start resumes the sink's consumer after the last record in the files and
// returns once the sink is consuming. Cancelling ctx ends the sink at once,
// as a crash would: it writes and acknowledges nothing more.
func (s *Sink) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("start log sink: already started")
	}
	cons, err := s.resume(ctx)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(sinkPullBatch))
	if err != nil {
		return fmt.Errorf("consume log stream: %w", err)
	}
	s.file = s.cfg.Writer()
	s.started = true
	go func() { // a crash or an abandoned Stop stops the iterator, so Next returns at once
		select {
		case <-ctx.Done():
			it.Stop()
		case <-s.abandon:
			it.Stop()
		case <-s.done:
		}
	}()
	go s.run(ctx, it)
	return nil
}

// path is the current log file's path: Dir and File (LogFileName unless
// set). Its backups are named after it.
func (c SinkConfig) path() string { return filepath.Join(c.Dir, cmp.Or(c.File, LogFileName)) }

// resume finds where the files end and points the consumer right after.
func (s *Sink) resume(ctx context.Context) (jetstream.Consumer, error) {
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	if err := terminateLastLine(s.cfg.path()); err != nil {
		return nil, err
	}
	inFiles, err := lastWritten(s.cfg.path())
	if err != nil {
		return nil, err
	}
	cons, err := s.stream.CreateOrUpdateConsumer(ctx, sinkConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("create log sink consumer: %w", err)
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read log stream info: %w", err)
	}
	next, partial := resumeAt(inFiles, cons.CachedInfo().AckFloor.Stream, info.State.LastSeq)
	// Resetting also forgets records delivered to a dead sink and never
	// acknowledged: with AckAll, acking a later record would otherwise
	// acknowledge them too, and they would never be written.
	if _, err := s.stream.ResetConsumerToSequence(ctx, sinkConsumer, next); err != nil {
		return nil, fmt.Errorf("reset log sink consumer: %w", err)
	}
	s.last.Store(next - 1)
	s.partial = partial
	return cons, nil
}

// resumeAt is the first sequence to deliver and, when the files end in
// that record, the position of its last line written. The files are the
// truth: they may be behind the ack floor (a power loss took unsynced
// lines, which the stream still has) or ahead of it (killed between write
// and ack, or in the middle of a record's lines). The record the files end
// in is delivered again, and its lines written already are skipped.
// Without any log_seq in the files (new or emptied directory) the ack
// floor decides, so deleting the files does not write everything again. A
// log_seq beyond the stream's end comes from an older stream that was
// recreated; it is ignored.
func resumeAt(inFiles position, ackFloor, streamLast uint64) (uint64, position) {
	if inFiles.seq == 0 || inFiles.seq > streamLast {
		return ackFloor + 1, position{}
	}
	return inFiles.seq, inFiles
}

func sinkConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       sinkConsumer,
		Description:   "AgentCom log sink: writes the log files",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		MaxAckPending: sinkMaxAckPending,
		FilterSubject: sinkFilter,
	}
}

// Stop writes everything the stream held when Stop was called (up to its
// last sequence), acknowledges it, closes the file and returns. Records
// that reach the stream later are written at the next Start. After the
// Start context was cancelled, Stop only waits for the sink to end. Safe
// to call more than once, and before Start.
func (s *Sink) Stop() { s.StopBy(context.Background()) }

// StopBy is Stop within ctx: if ctx ends first (a stream that cannot
// deliver its last records, as after a full disk), the sink stops where
// it is; what it did not write is written at the next Start.
func (s *Sink) StopBy(ctx context.Context) {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return
	}
	s.stopOnce.Do(func() {
		s.target.Store(s.streamLastSeq())
		s.stopping.Store(true)
		close(s.stopCh)
	})
	select {
	case <-s.done:
	case <-ctx.Done():
		s.abandonOnce.Do(func() { close(s.abandon) })
		<-s.done
	}
}

// streamLastSeq is the stream's last sequence, or 0 if it cannot be read:
// then Stop does not wait for anything more.
func (s *Sink) streamLastSeq() uint64 {
	select {
	case <-s.done:
		return 0
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), sinkAPITimeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

// Done is closed once the sink has ended: after Stop, after its Start
// context was cancelled, or when its subscription ended (connection closed,
// consumer deleted). The file is closed by then.
func (s *Sink) Done() <-chan struct{} { return s.done }

// Written is the number of lines this Sink has written.
func (s *Sink) Written() uint64 { return s.written.Load() }

// run writes records until the sink ends. It acknowledges (AckAll) the
// last handled record every sinkAckEvery records and whenever the stream
// is idle, always after writing.
func (s *Sink) run(ctx context.Context, it jetstream.MessagesContext) {
	defer close(s.done)
	defer func() { _ = s.file.Close() }()
	defer it.Stop()
	var unacked jetstream.Msg
	n := 0
	for {
		msg, err := it.Next(jetstream.NextMaxWait(sinkIdleWait))
		if ctx.Err() != nil {
			return // crash: no more writes, no more acks
		}
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) {
				return // iterator closed
			}
			s.ack(unacked, s.stopping.Load())
			unacked, n = nil, 0
			if s.stopping.Load() && s.nothingLeft() {
				return
			}
			continue
		}
		if !s.handle(ctx, msg) {
			return
		}
		unacked, n = msg, n+1
		if s.drained() {
			s.ack(unacked, true)
			return
		}
		if n >= sinkAckEvery {
			s.ack(unacked, false)
			unacked, n = nil, 0
		}
	}
}

// handle writes the lines of one record that the files do not have yet.
// It reports false if the sink must end instead (crash, or a write failing
// at Stop).
func (s *Sink) handle(ctx context.Context, msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	if err != nil {
		return true // not a stream message: nothing to write
	}
	seq := meta.Sequence.Stream
	if seq <= s.last.Load() {
		return true // a redelivery: acknowledged without writing
	}
	from := 0
	if seq == s.partial.seq {
		from = s.partial.line + 1
	}
	if !s.writeRecord(ctx, recordLines(msg.Data()), seq, from) {
		return false
	}
	s.last.Store(seq)
	return true
}

// writeRecord writes a record's lines from index from on, with as few
// Writes as fit in a file (lumberjack refuses a Write over its maximum
// size, and rotates only between Writes).
func (s *Sink) writeRecord(ctx context.Context, lines [][]byte, seq uint64, from int) bool {
	maxBytes := s.cfg.MaxSizeMB << 20
	s.line = s.line[:0]
	n := 0
	for i := from; i < len(lines); i++ {
		start := len(s.line)
		s.line = appendLine(s.line, lines[i], position{seq, i}, maxBytes)
		if start > 0 && len(s.line) > maxBytes { // the line goes into the next Write
			if !s.write(ctx, s.line[:start]) {
				return false
			}
			s.written.Add(uint64(n))
			s.line, n = append(s.line[:0], s.line[start:]...), 0
		}
		n++
	}
	if n == 0 {
		return true
	}
	if !s.write(ctx, s.line) {
		return false
	}
	s.written.Add(uint64(n))
	return true
}

// recordLines splits a record into its lines. A record the Publisher made
// holds one JSON object per line; anything else (a record published by
// hand that is one object spread over several lines, or not JSON at all)
// is one line. The first line decides: if it is a whole JSON object, so
// is every line of a Publisher's record.
func recordLines(rec []byte) [][]byte {
	first, rest, found := bytes.Cut(rec, []byte("\n"))
	if !found || !isJSONObject(bytes.TrimSpace(first)) {
		return [][]byte{rec}
	}
	lines := [][]byte{first}
	for len(rest) > 0 {
		first, rest, _ = bytes.Cut(rest, []byte("\n"))
		lines = append(lines, first)
	}
	return lines
}

// write writes whole lines with one Write. lumberjack decides on rotation
// per Write, before writing: whole lines per Write keep every line whole
// within one file, and a file overshoots MaxSize by at most one record's
// lines. A failing write (disk full) is retried until it succeeds, the
// sink crashes, or Stop is called.
func (s *Sink) write(ctx context.Context, line []byte) bool {
	for {
		n, err := s.file.Write(line)
		if err == nil {
			return true
		}
		line = line[n:]
		select {
		case <-ctx.Done():
			return false
		case <-s.stopCh:
			return false
		case <-time.After(sinkRetryWait):
		}
	}
}

// ack acknowledges msg and, with AckAll, everything before it. The final
// ack waits for the server's confirmation.
func (s *Sink) ack(msg jetstream.Msg, final bool) {
	if msg == nil {
		return
	}
	if !final {
		_ = msg.Ack()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sinkAPITimeout)
	defer cancel()
	_ = msg.DoubleAck(ctx)
}

// drained reports whether Stop was called and everything up to its target
// is in the files.
func (s *Sink) drained() bool {
	return s.stopping.Load() && s.last.Load() >= s.target.Load()
}

// nothingLeft reports, at Stop with the stream idle, whether the sink is
// done: everything up to the target is written, or the consumer has
// nothing more to deliver (the rest expired from the stream), or NATS
// cannot be asked.
func (s *Sink) nothingLeft() bool {
	if s.drained() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), sinkAPITimeout)
	defer cancel()
	cons, err := s.stream.Consumer(ctx, sinkConsumer)
	if err != nil {
		return true
	}
	info := cons.CachedInfo()
	return info.NumPending == 0 && info.Delivered.Stream <= s.last.Load()
}

// appendLine appends the file's line for one line of a record: the line
// with its position added as its last fields (log_seq, and log_line after
// a record's first line), or, if it is not a JSON object, a warning
// carrying its text. A line longer than maxBytes (lumberjack refuses to
// write it) is replaced by a warning saying how long it was.
func appendLine(dst, rec []byte, at position, maxBytes int) []byte {
	start := len(dst)
	rec = bytes.TrimSpace(rec)
	if isJSONObject(rec) {
		dst = appendWithSeq(dst, rec, at)
	} else {
		dst = appendUnparseable(dst, rec, at)
	}
	if len(dst)-start > maxBytes {
		dst = appendWarning(dst[:start], "oversized log record")
		dst = appendSeq(dst, at)
		dst = append(dst, `,"bytes":`...)
		dst = strconv.AppendInt(dst, int64(len(rec)), 10)
		dst = append(dst, "}\n"...)
	}
	return dst
}

func isJSONObject(rec []byte) bool {
	return len(rec) >= 2 && rec[0] == '{' && rec[len(rec)-1] == '}' && json.Valid(rec)
}

// appendWithSeq inserts log_seq before the object's closing brace. A
// record spread over several lines is compacted onto one.
func appendWithSeq(dst, rec []byte, at position) []byte {
	if bytes.ContainsAny(rec, "\r\n") {
		var buf bytes.Buffer
		if json.Compact(&buf, rec) == nil {
			rec = buf.Bytes()
		}
	}
	body := bytes.TrimRight(rec[:len(rec)-1], " \t\r\n")
	dst = append(dst, body...)
	if body[len(body)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = appendSeq(dst, at)
	return append(dst, "}\n"...)
}

func appendUnparseable(dst, rec []byte, at position) []byte {
	text, _ := json.Marshal(string(rec)) // a string always marshals
	dst = appendWarning(dst, "unparseable log record")
	dst = appendSeq(dst, at)
	dst = append(dst, `,"record":`...)
	dst = append(dst, text...)
	return append(dst, "}\n"...)
}

// appendWarning opens a line of the sink's own, with every field the log
// line schema requires, so the files stay one schema throughout.
func appendWarning(dst []byte, message string) []byte {
	dst = append(dst, `{"time":"`...)
	dst = time.Now().UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","severity":"warning","message":"`...)
	dst = append(dst, message...)
	dst = append(dst, `","module":"logsink","function":"logsink.appendLine","line":1,"pid":`...)
	dst = strconv.AppendInt(dst, int64(os.Getpid()), 10)
	dst = append(dst, `,"node":`...)
	node, _ := json.Marshal(Hostname())
	dst = append(dst, node...)
	return append(dst, ',')
}

// Hostname is the node name every log line and telemetry event carries:
// the host's name, or "unknown".
func Hostname() string {
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "unknown"
}

func appendSeq(dst []byte, at position) []byte {
	dst = strconv.AppendUint(append(dst, seqKey...), at.seq, 10)
	if at.line > 0 {
		dst = strconv.AppendInt(append(dst, lineKey...), int64(at.line), 10)
	}
	return dst
}

// linePosition reads the position of a line the sink wrote. The sink's
// log_seq is the last "log_seq": in the line: it comes after every field
// of the record, followed only by its log_line if any, and inside a JSON
// string that text cannot occur (its quotes would be escaped).
func linePosition(line []byte) (position, bool) {
	i := bytes.LastIndex(line, []byte(seqKey))
	if i < 0 {
		return position{}, false
	}
	seq, rest, ok := leadingUint(line[i+len(seqKey):])
	if !ok {
		return position{}, false
	}
	at := position{seq: seq}
	if after, found := bytes.CutPrefix(rest, []byte(lineKey)); found {
		n, _, ok := leadingUint(after)
		if !ok {
			return position{}, false
		}
		at.line = int(n)
	}
	return at, true
}

// leadingUint parses the digits at the start of b and returns what follows.
func leadingUint(b []byte) (uint64, []byte, bool) {
	end := 0
	for end < len(b) && b[end] >= '0' && b[end] <= '9' {
		end++
	}
	n, err := strconv.ParseUint(string(b[:end]), 10, 64)
	return n, b[end:], err == nil
}

// terminateLastLine ends the current file with a newline if a crash left a
// partial last line, so the next line starts on its own.
func terminateLastLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil || end == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, end-1); err != nil {
		return fmt.Errorf("read log file: %w", err)
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.Write([]byte("\n")); err != nil {
		return fmt.Errorf("terminate log file: %w", err)
	}
	return nil
}

// lastWritten is the position of the last line written: in the current
// file, or if it has none (just rotated, or missing), in the newest backup
// that has one. Zero if there is none.
func lastWritten(current string) (position, error) {
	files, err := logFilesNewestFirst(current)
	if err != nil {
		return position{}, err
	}
	for _, path := range files {
		at, err := lastInFile(path)
		if err != nil {
			return position{}, err
		}
		if at.seq > 0 {
			return at, nil
		}
	}
	return position{}, nil
}

// logFilesNewestFirst lists the current file and its backups, newest
// first. A backup whose compression was interrupted exists both as .log
// (complete) and .log.gz (partial): only the .log is listed.
func logFilesNewestFirst(current string) ([]string, error) {
	dir, prefix := filepath.Dir(current), strings.TrimSuffix(filepath.Base(current), ".log")+"-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list log dir: %w", err)
	}
	byTime := map[time.Time]string{}
	for _, e := range entries {
		t, ok := backupTime(prefix, e.Name())
		if ok && (byTime[t] == "" || !strings.HasSuffix(e.Name(), ".gz")) {
			byTime[t] = e.Name()
		}
	}
	times := make([]time.Time, 0, len(byTime))
	for t := range byTime {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].After(times[j]) })
	files := []string{current}
	for _, t := range times {
		files = append(files, filepath.Join(dir, byTime[t]))
	}
	return files, nil
}

// backupTime parses the time in a backup's name: <prefix><time>.log[.gz],
// the prefix being the current file's name without .log, and a dash.
func backupTime(prefix, name string) (time.Time, bool) {
	ts, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return time.Time{}, false
	}
	ts, ok = strings.CutSuffix(strings.TrimSuffix(ts, ".gz"), ".log")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(backupTimeFormat, ts)
	return t, err == nil
}

// lastInFile is the position of the file's last complete line that has
// one; zero if none, or if the file is missing. A damaged compressed file
// counts up to the damage.
func lastInFile(path string) (position, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("open log file: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return position{}, nil // damaged beyond its header: nothing usable
		}
		defer zr.Close()
		r = zr
	}
	return lastIn(r), nil
}

// lastIn scans newline-terminated lines; a partial last line (a crash
// mid-write) is not counted.
func lastIn(r io.Reader) position {
	br := bufio.NewReaderSize(r, 64<<10)
	var last position
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return last
		}
		if at, ok := linePosition(line); ok {
			last = at
		}
	}
}
