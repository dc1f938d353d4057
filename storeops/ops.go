package storeops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/writer"
)

// DefaultBackupPoll is how often the backup schedule looks at the clock.
const DefaultBackupPoll = backupPoll

// Params are what the store operations work with.
type Params struct {
	Config config.Hub
	Plan   Plan
	Store  *broker.EventStore
	Server *broker.Server
	Conn   *nats.Conn // the hub's own: backups read the streams with it
	Log    logsink.Logger
	// Telemetry receives the operations' spans (nil: none).
	Telemetry *telemetry.Emitter
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// BackupPoll defaults to DefaultBackupPoll.
	BackupPoll time.Duration
}

// Ops runs the event store's upkeep for a running hub: it rebuilds the
// projections (from the snapshot and the stream) and starts the writer on
// them, then keeps the snapshot, the store mark, the loss check, the full
// disk watch, compaction and backups going until Stop.
type Ops struct {
	cfg        config.Hub
	plan       Plan
	store      *broker.EventStore
	srv        *broker.Server
	nc         *nats.Conn
	js         jetstream.JetStream
	log        logsink.Logger
	tel        *telemetry.Emitter
	now        func() time.Time
	backupPoll time.Duration
	rec        records
	restore    chan string // backups to restore, for the process running the hub

	// Set by Rebuild, once.
	views *projections.Views
	svc   *writer.Service

	quit     chan struct{}
	life     context.Context // ends at Stop: background jobs run within it
	endLife  context.CancelFunc
	jobs     sync.WaitGroup
	stopOnce sync.Once
}

// New returns the store operations; call Rebuild, then Start.
func New(p Params) (*Ops, error) {
	js, err := jetstream.New(p.Conn)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.BackupPoll <= 0 {
		p.BackupPoll = DefaultBackupPoll
	}
	life, endLife := context.WithCancel(context.Background())
	return &Ops{cfg: p.Config, plan: p.Plan, store: p.Store, srv: p.Server, nc: p.Conn, js: js, log: p.Log,
		tel: p.Telemetry, now: p.Now, backupPoll: p.BackupPoll, restore: make(chan string, 1),
		quit: make(chan struct{}), life: life, endLife: endLife}, nil
}

// Views are the projections Rebuild brought up.
func (o *Ops) Views() *projections.Views { return o.views }

// Writer is the writer Rebuild started.
func (o *Ops) Writer() *writer.Service { return o.svc }

// Start enforces a loss found while rebuilding, writes the store mark,
// and starts the background jobs: the mark every second, the loss check,
// snapshots, the full disk watch, compaction and the backup schedule.
func (o *Ops) Start(ctx context.Context) error {
	if err := o.planBackups(ctx); err != nil { // first: the one that can fail
		return err
	}
	o.enforceLoss()
	o.SaveMark(ctx)
	o.every(time.Second, o.SaveMark)
	o.every(lossCheckInterval, o.CheckLoss)
	if o.cfg.Store.SnapshotInterval > 0 {
		o.every(o.cfg.Store.SnapshotInterval, func(ctx context.Context) { _ = o.SaveSnapshot(ctx) })
	}
	o.watchStore()
	o.every(o.cfg.Store.CompactionInterval, func(ctx context.Context) { _, _ = o.Compact(ctx) })
	return nil
}

// Stop ends the background jobs (a job under way is cancelled) and waits
// for them. Safe to call twice and before Start.
func (o *Ops) Stop() {
	o.stopOnce.Do(func() {
		close(o.quit)
		o.endLife()
		o.jobs.Wait()
	})
}

// SaveAtStop saves the snapshot and the store mark once the writer has
// stopped, if the projections followed the stream to the end.
func (o *Ops) SaveAtStop(ctx context.Context) {
	if o.svc == nil || !o.svc.Started() {
		return
	}
	o.saveSnapshotAtStop(ctx)
	o.SaveMark(ctx)
}

// Rebuild checks the store for loss (the server's report and the store
// mark), then brings the projections up to the stream's end, as a span: from
// the snapshot when it is usable (only the events after it are replayed),
// else from the start; then the writer takes commands on them.
func (o *Ops) Rebuild(ctx context.Context) error {
	if err := o.checkLoss(ctx); err != nil {
		return err
	}
	start := time.Now()
	views, from := o.snapshotViews(ctx)
	return o.tel.Span("projection.rebuild", nil, func() (map[string]any, error) {
		err := o.startViews(ctx, views)
		if err != nil && from > 0 {
			o.snapshotDiscarded(fmt.Sprintf("the events after it do not apply: %v", err))
			from = 0
			err = o.startViews(ctx, projections.NewViews())
		}
		if err != nil {
			return nil, err
		}
		if loss := o.svc.Loss(); loss != nil {
			o.lost(loss.Error())
		}
		last := o.views.LastSeq()
		if from > 0 {
			o.snapshotLoaded(from, last, time.Since(start))
		}
		o.log.Info().Uint64("last_seq", last).Uint64("events", last-from).Int("tasks", o.views.Tasks.Stats().Total).
			Dur("duration_ms", time.Since(start)).Msg("projections rebuilt")
		return map[string]any{"last_seq": last, "events": last - from}, nil
	})
}

// LastSnapshot is the last snapshot load or save, nil if none.
func (o *Ops) LastSnapshot() *OpRecord {
	o.rec.mu.Lock()
	defer o.rec.mu.Unlock()
	return o.rec.snapshot
}
