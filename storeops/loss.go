package storeops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/agentcom/agentcom/atomicfile"
	"github.com/agentcom/agentcom/broker"
)

// markFile is <data-dir>/store.mark: the high-water mark of the events
// the hub has applied, fsynced beside the store. A store that ends before
// it, or holds another event at it, lost events.
const markFile = "store.mark"

// storeMark is the mark file's content.
type storeMark struct {
	LastSeq   uint64 `json:"last_seq"`
	LastMsgID string `json:"last_msg_id"`
	// Msgs is how many events the stream held when its last sequence was
	// MsgsAt. Only the hub removes events (compaction), and only with an
	// append after them, so a stream still ending at MsgsAt that holds
	// fewer lost them behind the hub's back (a purge with the store
	// opened offline). Zero: not known.
	Msgs   uint64 `json:"msgs,omitempty"`
	MsgsAt uint64 `json:"msgs_at,omitempty"`
}

func markPath(dataDir string) string { return filepath.Join(dataDir, markFile) }

// readMark returns the mark, or a zero mark when there is none yet.
func readMark(dataDir string) (storeMark, error) {
	var m storeMark
	data, err := os.ReadFile(markPath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read store mark: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("read store mark %s: %w", markPath(dataDir), err)
	}
	return m, nil
}

func writeMark(dataDir string, m storeMark) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode store mark: %w", err)
	}
	if err := atomicfile.Write(markPath(dataDir), 0o600, data, []byte("\n")); err != nil {
		return fmt.Errorf("write store mark: %w", err)
	}
	return nil
}

// checkMark compares the stream with the mark and returns what was lost
// ("" when nothing): the stream ending before the mark, or another event
// at the mark's sequence (a sequence reused after a truncation). An event
// at the mark that is deleted is not loss: compaction rolls events up.
func checkMark(ctx context.Context, store *broker.EventStore, m storeMark) (string, error) {
	if m.LastSeq == 0 {
		return "", nil
	}
	info, err := store.Info(ctx)
	if err != nil {
		return "", err
	}
	if last := info.State.LastSeq; last < m.LastSeq {
		return fmt.Sprintf("the stream ends at sequence %d but the hub had applied up to %d: sequences %d-%d lost",
			last, m.LastSeq, last+1, m.LastSeq), nil
	}
	if st := info.State; m.MsgsAt != 0 && st.LastSeq == m.MsgsAt && st.Msgs < m.Msgs {
		return fmt.Sprintf("the stream holds %d events but held %d at sequence %d, and nothing was appended since: "+
			"%d events were removed behind the hub's back (a purge?)", st.Msgs, m.Msgs, m.MsgsAt, m.Msgs-st.Msgs), nil
	}
	id, err := store.MsgID(ctx, m.LastSeq)
	if errors.Is(err, broker.ErrNoMessage) {
		return "", nil // rolled up, or damaged: a full read reports the latter
	}
	if err != nil {
		return "", err
	}
	if id != m.LastMsgID {
		return fmt.Sprintf("the event at sequence %d is %s, not %s which the hub applied: the stream lost events and reused the sequence",
			m.LastSeq, id, m.LastMsgID), nil
	}
	return "", nil
}

// SaveMark writes the mark at the projections' last event, unless loss
// was found: the mark then stays where the loss shows.
func (o *Ops) SaveMark(ctx context.Context) {
	if o.LossFound() || o.svc == nil || o.svc.Err() != nil {
		return
	}
	seq := o.views.LastSeq()
	o.rec.mu.Lock()
	same := o.rec.mark == seq
	o.rec.mu.Unlock()
	if seq == 0 || same {
		return
	}
	id, err := o.store.MsgID(ctx, seq)
	if err != nil {
		return // rolled up meanwhile: the next tick writes a newer one
	}
	m := storeMark{LastSeq: seq, LastMsgID: id}
	if info, err := o.store.Info(ctx); err == nil {
		m.Msgs, m.MsgsAt = info.State.Msgs, info.State.LastSeq
	}
	if err := writeMark(o.cfg.DataDir, m); err != nil {
		o.log.Module("store").Error().Err(err).Msg("store mark not saved")
		return
	}
	o.rec.mu.Lock()
	o.rec.mark = seq
	o.rec.mu.Unlock()
}

// LossFound reports whether the store has lost events (sticky).
func (o *Ops) LossFound() bool {
	o.rec.mu.Lock()
	defer o.rec.mu.Unlock()
	return o.rec.lossAtStart != ""
}

// enforceLoss, after the rebuild, makes a detected loss refuse commands,
// and says so in telemetry.
func (o *Ops) enforceLoss() {
	o.rec.mu.Lock()
	why := o.rec.lossAtStart
	o.rec.mu.Unlock()
	if why == "" {
		return
	}
	o.svc.RefuseForLoss(errors.New(why))
	o.tel.Emit("store.loss", nil, map[string]any{"reason": why, "last_seq": o.views.LastSeq()})
	o.log.Module("store").Error().Str("reason", why).Msg("event store lost events: refusing commands until a backup is restored or the loss accepted")
}

// lossCheckInterval is how often a running hub checks its stream against
// the last mark it wrote.
const lossCheckInterval = 10 * time.Second

// CheckLoss checks, while the hub runs, the stream against the last mark
// written (checkMark): a loss found is sticky and refuses commands, as
// one found at start. The server's own lost report is read at start only:
// after a full disk JetStream may report the unacknowledged write it
// dropped, which is no loss of the hub's.
func (o *Ops) CheckLoss(ctx context.Context) {
	if o.LossFound() {
		return
	}
	mark, err := readMark(o.cfg.DataDir)
	if err != nil {
		return
	}
	why, err := checkMark(ctx, o.store, mark)
	if err != nil || why == "" {
		return
	}
	o.lost(why)
	o.enforceLoss()
}
