package storeops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol/ops"
)

// Health levels of the store.
const (
	Healthy   = "healthy"
	Warning   = "warning"
	Unhealthy = "unhealthy"
)

// The store health answer and its parts are the operations table's
// types (protocol/ops): what the API declares is what this fills in.
type (
	StoreHealth  = ops.StoreHealth
	StreamHealth = ops.StreamHealth
	OpRecord     = ops.OpRecord
)

// records remembers the last backup, compaction and snapshot, and any
// loss found at start. Loss is sticky: the hub never reports healthy after
// it detected loss.
type records struct {
	mu          sync.Mutex
	backup      *OpRecord
	compaction  *OpRecord
	snapshot    *OpRecord
	lossAtStart string
	mark        uint64 // the sequence of the last store mark written
	plan        backupPlan
}

func (o *records) record(slot **OpRecord, ok bool, detail map[string]any) {
	o.recordAt(slot, time.Now(), ok, detail)
}

func (o *records) recordAt(slot **OpRecord, at time.Time, ok bool, detail map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	*slot = &OpRecord{At: at.UTC(), OK: ok, Detail: detail}
}

// checkLoss records lost messages the server reported when it opened the
// event stream (a corrupt or truncated block is cut off at start).
func (o *Ops) checkLoss(ctx context.Context) error {
	info, err := o.store.Info(ctx)
	if err != nil {
		return err
	}
	if lost := info.State.Lost; lost != nil && (len(lost.Msgs) > 0 || lost.Bytes > 0) {
		o.rec.lossAtStart = fmt.Sprintf("the event store lost %d messages (%d bytes) at start: %v",
			len(lost.Msgs), lost.Bytes, lost.Msgs)
		o.log.Module("store").Error().Int("lost_msgs", len(lost.Msgs)).Uint64("lost_bytes", lost.Bytes).
			Msg("event store lost data at start")
	}
	mark, err := readMark(o.cfg.DataDir)
	if err != nil {
		return err
	}
	why, err := checkMark(ctx, o.store, mark)
	if err != nil {
		return err
	}
	if why != "" {
		o.lost(why)
	}
	return nil
}

// StoreHealth reports the streams and the store operations, healthy,
// warning or unhealthy.
func (o *Ops) StoreHealth(ctx context.Context) (StoreHealth, error) {
	out := StoreHealth{Status: Healthy, Reasons: []string{}, Tasks: o.views.Tasks.Stats().Total}
	for _, name := range []string{broker.EventsStream, broker.TokensStream, broker.LogsStream, broker.TelemetryStream} {
		sh, err := o.streamHealth(ctx, name)
		if err != nil {
			continue // telemetry may be off
		}
		if len(sh.LostMsgs) > 0 || sh.LostBytes > 0 {
			worsen(&out, Unhealthy, fmt.Sprintf("stream %s reports lost messages", name))
		}
		out.Streams = append(out.Streams, sh)
	}
	o.rec.mu.Lock()
	out.LossAtStart, out.LastBackup, out.LastCompact, out.Snapshot = o.rec.lossAtStart, o.rec.backup, o.rec.compaction, o.rec.snapshot
	plan := o.rec.plan
	o.rec.mu.Unlock()
	if out.LossAtStart != "" {
		worsen(&out, Unhealthy, out.LossAtStart)
	}
	if err := o.svc.Err(); err != nil {
		worsen(&out, Unhealthy, "the projections cannot follow the stream: "+err.Error())
	}
	if err := o.store.Full(); err != nil {
		worsen(&out, Unhealthy, err.Error()+": writes are refused (store_full) until space returns")
	}
	o.judgeBackup(&out, plan)
	return out, nil
}

// judgeBackup shows the schedule and warns when the last backup failed
// or the next is overdue (later than its due time by more than the grace).
func (o *Ops) judgeBackup(out *StoreHealth, plan backupPlan) {
	interval := o.cfg.Store.BackupInterval
	now := o.now()
	out.NextBackup = plan.due(interval)
	if out.LastBackup != nil {
		age := now.Sub(out.LastBackup.At).Seconds()
		out.BackupAgeS = &age
		if !out.LastBackup.OK {
			worsen(out, Warning, "the last backup failed")
		}
	}
	if now.After(out.NextBackup.Add(min(interval, backupGrace))) {
		out.BackupOverdue = true
		since := "the event store was created"
		if !plan.last.IsZero() {
			since = "the last good backup, " + plan.last.Format(time.RFC3339)
		}
		worsen(out, Warning, fmt.Sprintf("a backup is overdue: due at %s, one backup interval (%s) after %s",
			out.NextBackup.Format(time.RFC3339), interval, since))
	}
}

func worsen(s *StoreHealth, level, reason string) {
	rank := map[string]int{Healthy: 0, Warning: 1, Unhealthy: 2}
	if rank[level] > rank[s.Status] {
		s.Status = level
	}
	s.Reasons = append(s.Reasons, reason)
}

func (o *Ops) streamHealth(ctx context.Context, name string) (StreamHealth, error) {
	st, err := o.js.Stream(ctx, name)
	if err != nil {
		return StreamHealth{}, fmt.Errorf("open stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return StreamHealth{}, fmt.Errorf("read stream %s: %w", name, err)
	}
	sh := StreamHealth{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq}
	if lost := info.State.Lost; lost != nil {
		sh.LostMsgs, sh.LostBytes = lost.Msgs, lost.Bytes
	}
	return sh, nil
}
