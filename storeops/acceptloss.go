package storeops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/writer"
)

// ErrNoLoss means accept-loss found nothing lost to accept.
var ErrNoLoss = errors.New("the event store has lost nothing: there is no loss to accept")

// AcceptLoss records, in a stopped hub's store, that the operator accepts
// the events it lost: a store.loss_accepted event naming what is missing,
// after which the mark is reset to the stream's end and the hub takes
// commands again. It returns what was accepted.
func AcceptLoss(ctx context.Context, dataDir, by string, log logsink.Logger) (string, error) {
	store, closeAll, err := openStore(ctx, dataDir, "accept-loss", log,
		fmt.Errorf("accept loss in %s: a hub is running on it; stop it first", dataDir))
	if err != nil {
		return "", err
	}
	defer closeAll()
	missing, err := findLoss(ctx, store, dataDir)
	if err != nil {
		return "", err
	}
	return missing, recordAccepted(ctx, store, dataDir, missing, by)
}

// findLoss describes what the store lost: against the mark, and what a
// full read misses (not yet accepted).
func findLoss(ctx context.Context, store *broker.EventStore, dataDir string) (string, error) {
	mark, err := readMark(dataDir)
	if err != nil {
		return "", err
	}
	why, err := checkMark(ctx, store, mark)
	if err != nil {
		return "", err
	}
	var accepted uint64
	views := projections.NewViews()
	err = store.Read(ctx, broker.ReadOpts{}, func(env domain.Envelope) error {
		if a, ok := env.Data.(domain.StoreLossAccepted); ok {
			accepted = max(accepted, a.Through)
		}
		return views.Apply(env)
	})
	var loss *broker.LossError
	if errors.As(err, &loss) && !writer.LossAccepted(err, accepted) {
		why = joinReasons(why, loss.Error())
	} else if err != nil && loss == nil {
		return "", fmt.Errorf("read the store: %w", err)
	}
	if why == "" {
		return "", ErrNoLoss
	}
	return why, nil
}

func joinReasons(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// recordAccepted appends the store.loss_accepted event and moves the mark
// to it.
func recordAccepted(ctx context.Context, store *broker.EventStore, dataDir, missing, by string) error {
	info, err := store.Info(ctx)
	if err != nil {
		return err
	}
	env, seq, err := appendStoreEvent(ctx, store, domain.StoreLossAccepted{Missing: missing, Through: info.State.LastSeq, By: by})
	if err != nil {
		return err
	}
	// A snapshot from before the loss no longer matches the stream.
	if err := os.Remove(SnapshotPath(dataDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the snapshot: %w", err)
	}
	return writeMark(dataDir, storeMark{LastSeq: seq, LastMsgID: env.ID})
}
