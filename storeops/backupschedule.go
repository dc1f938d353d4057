package storeops

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
	// BackupRetry is how soon a failed backup is tried again (or after
	// store.backup_interval, if shorter).
	BackupRetry = 10 * time.Minute
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
func (o *Ops) planBackups(ctx context.Context) error {
	info, err := o.store.Info(ctx)
	if err != nil {
		return err
	}
	plan := backupPlan{base: info.Created.UTC()}
	files, err := broker.ListBackups(BackupDir(o.cfg.DataDir))
	if err != nil { // the schedule goes on; the backups will fail and say why
		o.log.Module("store").Error().Err(err).Msg("cannot read the backups on disk")
	}
	o.rec.mu.Lock()
	if len(files) > 0 {
		newest := files[0]
		plan.last, plan.base = newest.CreatedAt, newest.CreatedAt
		o.rec.backup = &OpRecord{At: newest.CreatedAt, OK: true,
			Detail: map[string]any{"file": newest.Name, "bytes": newest.Size, "found_at_start": true}}
	}
	plan.next = plan.due(o.cfg.Store.BackupInterval)
	o.rec.plan = plan
	o.rec.mu.Unlock()
	line := o.log.Module("store").Info().Time("next_backup_due", plan.next)
	if !plan.last.IsZero() {
		line = line.Time("last_backup", plan.last)
	}
	line.Msg("backup schedule")
	o.jobs.Add(1)
	go o.backupLoop()
	return nil
}

// backupLoop takes a backup whenever one is due, until the hub stops.
func (o *Ops) backupLoop() {
	defer o.jobs.Done()
	tick := time.NewTicker(min(o.cfg.Store.BackupInterval, o.backupPoll))
	defer tick.Stop()
	for {
		if o.backupDue() {
			ctx, cancel := o.jobContext()
			_, _ = o.Backup(ctx)
			cancel()
		}
		select {
		case <-o.quit:
			return
		case <-tick.C:
		}
	}
}

// backupDue reports whether the next backup attempt's time has come.
func (o *Ops) backupDue() bool {
	o.rec.mu.Lock()
	defer o.rec.mu.Unlock()
	return !o.now().Before(o.rec.plan.next)
}

// backupDone moves the schedule on after a backup (made at at): one
// interval after a good one, a retry sooner after a failed one.
func (o *Ops) backupDone(at time.Time, ok bool) {
	interval := o.cfg.Store.BackupInterval
	o.rec.mu.Lock()
	defer o.rec.mu.Unlock()
	if ok {
		o.rec.plan.last, o.rec.plan.base = at, at
		o.rec.plan.next = at.Add(interval)
		return
	}
	o.rec.plan.next = at.Add(min(interval, BackupRetry))
}
