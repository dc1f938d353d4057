package storeops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/writer"
)

// ReplayOpts chooses what to rebuild. Zero limits mean the whole stream.
type ReplayOpts struct {
	DataDir  string
	UntilSeq uint64
	Until    time.Time
	TaskID   string
}

// TimelineEntry is one event of a task's timeline (declared with the
// operations: task.timeline answers them).
type TimelineEntry = ops.TimelineEntry

// ReplayResult is the rebuilt state: the projection's state and stats up
// to the chosen point, or, with a task id, that task's timeline and state.
type ReplayResult struct {
	StreamLastSeq uint64            `json:"stream_last_seq"`
	State         projections.State `json:"state"`
	Stats         projections.Stats `json:"stats"`
	Timeline      []TimelineEntry   `json:"timeline,omitempty"`
	Task          *domain.Task      `json:"task,omitempty"`
	Agents        []*domain.Agent   `json:"agents"`
	// Settings are the run-time settings changed from the file's values
	// at that point (a reset key is not among them), by key.
	Settings map[string]string `json:"settings"`
}

// Replay rebuilds the projections offline from the store in opts.DataDir,
// which must not be in use by a running hub (stop it, or replay a copy).
func Replay(ctx context.Context, opts ReplayOpts, log logsink.Logger) (*ReplayResult, error) {
	if _, err := os.Stat(filepath.Join(opts.DataDir, "jetstream")); err != nil {
		return nil, fmt.Errorf("replay %s: no event store there: %w", opts.DataDir, err)
	}
	store, closeAll, err := openStore(ctx, opts.DataDir, "replay", log,
		fmt.Errorf("replay %s: a hub is running on it; stop it or replay a copy of the directory", opts.DataDir))
	if err != nil {
		return nil, err
	}
	defer closeAll()
	res, err := ReplayStore(ctx, store, opts)
	if err != nil {
		return nil, err
	}
	if err := replayMark(ctx, store, opts.DataDir); err != nil {
		return nil, err
	}
	return res, nil
}

// replayMark fails a replay of a store that ends before, or holds another
// event at, the mark of what the hub applied: the hub would report loss.
func replayMark(ctx context.Context, store *broker.EventStore, dataDir string) error {
	mark, err := readMark(dataDir)
	if err != nil {
		return err
	}
	why, err := checkMark(ctx, store, mark)
	if err != nil {
		return err
	}
	if why != "" {
		return fmt.Errorf("replay %s: %w: %s", dataDir, broker.ErrLoss, why)
	}
	return nil
}

// openStore opens a stopped hub's event store for the offline command
// named what (replay, accept-loss, quarantine): openOffline, then the
// EVENTS stream. It returns the store and what closes it all.
func openStore(ctx context.Context, dataDir, what string, log logsink.Logger, whenLocked error) (*broker.EventStore, func(), error) {
	nc, closeAll, err := openOffline(dataDir, "agentcom-"+what, log, whenLocked)
	if err != nil {
		return nil, nil, err
	}
	store, err := broker.ExistingEventStore(ctx, nc)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = fmt.Errorf("%s %s: no AgentCom events stored there", what, dataDir)
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return store, closeAll, nil
}

// openOffline locks a stopped hub's data directory and starts an embedded
// server on it, for the commands that work on the store while no hub runs
// (replay, restore). It returns a connection named client and what closes
// it all; whenLocked is the error if a hub holds the directory.
func openOffline(dataDir, client string, log logsink.Logger, whenLocked error) (*nats.Conn, func(), error) {
	unlock, err := broker.LockDataDir(dataDir)
	if errors.Is(err, broker.ErrLocked) {
		return nil, nil, whenLocked
	} else if err != nil {
		return nil, nil, err
	}
	auth := broker.NewAuthenticator()
	srv, err := broker.StartServer(broker.ServerConfig{DataDir: dataDir, Auth: auth, Log: log})
	if err != nil {
		unlock()
		return nil, nil, err
	}
	nc, err := srv.ConnectInProcess(auth.HubSecret(), client)
	if err != nil {
		srv.Shutdown()
		unlock()
		return nil, nil, err
	}
	return nc, func() { nc.Close(); srv.Shutdown(); unlock() }, nil
}

func ReplayStore(ctx context.Context, store *broker.EventStore, opts ReplayOpts) (*ReplayResult, error) {
	last, err := store.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	res := &ReplayResult{StreamLastSeq: last, Settings: map[string]string{}}
	views := projections.NewViews()
	tasks := views.Tasks
	var accepted uint64
	err = store.Read(ctx, broker.ReadOpts{Until: opts.UntilSeq}, func(env domain.Envelope) error {
		if a, ok := env.Data.(domain.StoreLossAccepted); ok {
			accepted = max(accepted, a.Through)
		}
		if c, ok := env.Data.(domain.ConfigChanged); ok && (opts.Until.IsZero() || !env.Time.After(opts.Until)) {
			res.Settings[c.Key] = c.Value
			if c.Reset {
				delete(res.Settings, c.Key)
			}
		}
		if !opts.Until.IsZero() && env.Time.After(opts.Until) {
			return broker.ErrStop
		}
		if opts.TaskID != "" && env.Aggregate == opts.TaskID {
			entry, err := timelineEntry(env)
			if err != nil {
				return err
			}
			res.Timeline = append(res.Timeline, entry)
		}
		return views.Apply(env)
	})
	if err != nil && !writer.LossAccepted(err, accepted) {
		return nil, fmt.Errorf("replay events: %w", err)
	}
	res.State, res.Stats, res.Agents = tasks.State(), tasks.Stats(), views.Agents.List()
	if opts.TaskID != "" {
		t, _, ok := tasks.Get(opts.TaskID)
		if !ok {
			return nil, fmt.Errorf("replay: task %s has no events up to that point", opts.TaskID)
		}
		res.Task = t
	}
	return res, nil
}

func timelineEntry(env domain.Envelope) (TimelineEntry, error) {
	data, err := json.Marshal(env.Data)
	if err != nil {
		return TimelineEntry{}, fmt.Errorf("encode event %s: %w", env.ID, err)
	}
	return TimelineEntry{Seq: env.Seq, Time: env.Time, Type: env.Type, Version: env.Version,
		ID: env.ID, RequestID: env.RequestID, Data: data}, nil
}

// Timeline reads one task's events from its subject, oldest first, while
// the hub runs (a filtered read: no replay of the rest). A task without
// events is domain.ErrNotFound.
func (o *Ops) Timeline(ctx context.Context, id string) ([]TimelineEntry, error) {
	var out []TimelineEntry
	err := o.store.Read(ctx, broker.ReadOpts{Subject: broker.TaskEvents(id)}, func(env domain.Envelope) error {
		e, err := timelineEntry(env)
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the timeline of %s: %w", id, err)
	}
	if len(out) == 0 {
		return nil, &domain.NotFoundError{TaskID: id}
	}
	return out, nil
}
