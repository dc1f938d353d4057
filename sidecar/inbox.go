package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/agentcom/agentcom/atomicfile"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// inbox holds the agent's unacknowledged messages as one JSON file each,
// <seq>-<message id>.json with the sequence zero-padded so that names sort
// in order; a file is written whole (write, fsync, rename) or not at all,
// and removed once the hub has the acknowledgement. The files are the
// sidecar's state: a restart reads them back.
type inbox struct {
	dir string

	mu     sync.Mutex
	held   map[uint64]string // seq -> file name
	cursor uint64            // the hub's cursor as last heard
}

// openInbox creates dir and notes the messages already in it.
func openInbox(dir string) (*inbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create inbox dir %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read inbox dir %s: %w", dir, err)
	}
	in := &inbox{dir: dir, held: map[uint64]string{}}
	for _, e := range entries {
		if seq, ok := seqOfFile(e.Name()); ok {
			in.held[seq] = e.Name()
		}
	}
	return in, nil
}

// seqOfFile reads the sequence of an inbox file's name.
func seqOfFile(name string) (uint64, bool) {
	head, _, ok := strings.Cut(name, "-")
	if !ok || !strings.HasSuffix(name, ".json") {
		return 0, false
	}
	seq, err := strconv.ParseUint(head, 10, 64)
	return seq, err == nil && seq > 0
}

// put writes m unless it is held already or acknowledged; it reports
// whether m is new.
func (in *inbox) put(m protocol.Message) (bool, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.held[m.Seq]; ok || m.Seq == 0 || m.Seq <= in.cursor {
		return false, nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return false, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	name := fmt.Sprintf("%012d-%s.json", m.Seq, filepath.Base(m.ID))
	if err := atomicfile.Write(filepath.Join(in.dir, name), 0o600, append(b, '\n')); err != nil {
		return false, fmt.Errorf("write message %s to inbox: %w", m.ID, err)
	}
	in.held[m.Seq] = name
	return true, nil
}

// list returns the held messages, oldest first, and the cursor.
func (in *inbox) list() (protocol.Inbox, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := protocol.Inbox{Messages: []protocol.Message{}, Cursor: in.cursor}
	seqs := make([]uint64, 0, len(in.held))
	for seq := range in.held {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var errs []error
	for _, seq := range seqs {
		b, err := os.ReadFile(filepath.Join(in.dir, in.held[seq]))
		var m protocol.Message
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read inbox file %s: %w", in.held[seq], err))
			continue
		}
		out.Messages = append(out.Messages, m)
	}
	return out, errors.Join(errs...)
}

// acknowledged notes the hub's cursor and removes every file up to it.
// It returns how many it removed.
func (in *inbox) acknowledged(cursor uint64) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cursor = max(in.cursor, cursor)
	var errs []error
	n := 0
	for seq, name := range in.held {
		if seq > in.cursor {
			continue
		}
		err := os.Remove(filepath.Join(in.dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove inbox file %s: %w", name, err))
			continue
		}
		delete(in.held, seq)
		n++
	}
	if n > 0 {
		errs = append(errs, atomicfile.SyncDir(in.dir))
	}
	return n, errors.Join(errs...)
}

// onMessage takes a pushed message into the inbox.
func (s *Sidecar) onMessage(data []byte) {
	var m protocol.Message
	if err := json.Unmarshal(data, &m); err != nil || m.ID == "" || m.Seq == 0 {
		s.log.Warning().Err(err).Msg("message push unreadable; ignored (the mailbox keeps it for the next hello)")
		return
	}
	s.receive(m, "push")
}

// receive writes m to the inbox if it is new, logs it, and reports
// whether it was new.
func (s *Sidecar) receive(m protocol.Message, via string) bool {
	added, err := s.inbox.put(m)
	switch {
	case err != nil:
		s.log.Error().Err(err).Str("message_id", m.ID).Msg("message not written to the inbox; the mailbox keeps it for the next hello")
	case added:
		s.log.Info().Str("message_id", m.ID).Uint64("seq", m.Seq).Str("from", m.From).Str("via", via).
			Str("thread_id", m.ThreadID).Msg("message received into the inbox")
	}
	return added
}

// syncInbox reads the mailbox after a hello: what waited while the
// sidecar was away is written to the inbox, and what was acknowledged
// meanwhile leaves it.
func (s *Sidecar) syncInbox() {
	rid := logsink.NewRequestID()
	var in protocol.Inbox
	if err := s.request(s.ctx, broker.VerbInbox, rid, struct{}{}, &in); err != nil {
		if s.ctx.Err() == nil {
			s.log.Warning().Err(err).Str("request_id", rid).Msg("mailbox not read; it is read again at the next hello")
		}
		return
	}
	if _, err := s.inbox.acknowledged(in.Cursor); err != nil {
		s.log.Error().Err(err).Msg("acknowledged messages not removed from the inbox")
	}
	added := 0
	for _, m := range in.Messages {
		if s.receive(m, "mailbox") {
			added++
		}
	}
	s.log.Info().Str("request_id", rid).Int("waiting", len(in.Messages)).Int("new", added).Uint64("cursor", in.Cursor).
		Msg("mailbox read")
}
