package hub

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/broker"
)

// Backup schedule timings.
const (
	// backupPoll is how often the schedule looks at the clock (or every
	// store.backup_interval, if shorter).
	backupPoll = time.Minute
	// backupRetry is how soon a failed backup is tried again (or after
	// store.backup_interval, if shorter).
	backupRetry = 10 * time.Minute
	// backupGrace is how late a due backup may be before store-health
	// warns that it is overdue (or store.backup_interval, if shorter).
	backupGrace = 5 * time.Minute
)

// backupPlan is the backup schedule. It is read from the backups on disk
// at start, so a restart neither resets it nor skips a backup: the next
// is due one interval after the newest backup on disk (after the event
// stream's creation while there is none).
type backupPlan struct {
	last time.Time // the newest good backup; zero if there is none
	base time.Time // last, or the event stream's creation
	next time.Time // the next attempt: when due, or a retry after a failure
}

// due is when the next backup is due.
func (p backupPlan) due(interval time.Duration) time.Time { return p.base.Add(interval) }

// planBackups reads the schedule from the backups on disk and the event
// stream, and starts taking backups when they are due.
func (h *Hub) planBackups(ctx context.Context) error {
	info, err := h.store.Info(ctx)
	if err != nil {
		return err
	}
	plan := backupPlan{base: info.Created.UTC()}
	files, err := broker.ListBackups(BackupDir(h.cfg.DataDir))
	if err != nil { // the schedule goes on; the backups will fail and say why
		h.log.Module("store").Error().Err(err).Msg("cannot read the backups on disk")
	}
	h.ops.mu.Lock()
	if len(files) > 0 {
		newest := files[0]
		plan.last, plan.base = newest.CreatedAt, newest.CreatedAt
		h.ops.backup = &OpRecord{At: newest.CreatedAt, OK: true,
			Detail: map[string]any{"file": newest.Name, "bytes": newest.Size, "found_at_start": true}}
	}
	plan.next = plan.due(h.cfg.Store.BackupInterval)
	h.ops.plan = plan
	h.ops.mu.Unlock()
	line := h.log.Module("store").Info().Time("next_backup_due", plan.next)
	if !plan.last.IsZero() {
		line = line.Time("last_backup", plan.last)
	}
	line.Msg("backup schedule")
	h.jobs.Add(1)
	go h.backupLoop()
	return nil
}

// backupLoop takes a backup whenever one is due, until the hub stops.
func (h *Hub) backupLoop() {
	defer h.jobs.Done()
	tick := time.NewTicker(min(h.cfg.Store.BackupInterval, h.backupPoll))
	defer tick.Stop()
	for {
		if h.backupDue() {
			ctx, cancel := h.jobContext()
			_, _ = h.Backup(ctx)
			cancel()
		}
		select {
		case <-h.quit:
			return
		case <-tick.C:
		}
	}
}

// backupDue reports whether the next backup attempt's time has come.
func (h *Hub) backupDue() bool {
	h.ops.mu.Lock()
	defer h.ops.mu.Unlock()
	return !h.now().Before(h.ops.plan.next)
}

// backupDone moves the schedule on after a backup (made at at): one
// interval after a good one, a retry sooner after a failed one.
func (h *Hub) backupDone(at time.Time, ok bool) {
	interval := h.cfg.Store.BackupInterval
	h.ops.mu.Lock()
	defer h.ops.mu.Unlock()
	if ok {
		h.ops.plan.last, h.ops.plan.base = at, at
		h.ops.plan.next = at.Add(interval)
		return
	}
	h.ops.plan.next = at.Add(min(interval, backupRetry))
}
