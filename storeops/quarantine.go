package storeops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/writer"
)

// ErrReadable means quarantine was asked for an event this build reads:
// skipping it would change the state, so it is refused.
var ErrReadable = errors.New("the event is readable; only an event this build cannot read may be quarantined")

// Quarantine records, in a stopped hub's store, that the event at seq,
// which this build cannot read, is to be skipped: a
// store.event_quarantined event. The task's other events stay. It returns
// why the event could not be read.
func Quarantine(ctx context.Context, dataDir string, seq uint64, by string, log logsink.Logger) (string, error) {
	store, closeAll, err := openStore(ctx, dataDir, "quarantine", log,
		fmt.Errorf("quarantine in %s: a hub is running on it; stop it first", dataDir))
	if err != nil {
		return "", err
	}
	defer closeAll()
	skip, err := store.Quarantined(ctx)
	if err != nil {
		return "", err
	}
	if skip[seq] {
		return "", fmt.Errorf("quarantine event %d: it is quarantined already", seq)
	}
	subject, data, err := store.Raw(ctx, seq)
	if err != nil {
		return "", fmt.Errorf("quarantine event %d: %w", seq, err)
	}
	env, decodeErr := domain.DecodeEnvelope(data)
	if decodeErr == nil {
		return "", fmt.Errorf("quarantine event %d (%s of %s): %w", seq, env.Type, env.Aggregate, ErrReadable)
	}
	ev := domain.StoreEventQuarantined{Seq: seq, Subject: subject, Reason: decodeErr.Error(), By: by}
	_, _, err = appendStoreEvent(ctx, store, ev)
	return ev.Reason, err
}

// appendStoreEvent appends one event about the store itself, and returns
// it with its sequence.
func appendStoreEvent(ctx context.Context, store *broker.EventStore, ev domain.Event) (domain.Envelope, uint64, error) {
	expected, err := store.SubjectLastSeq(ctx, broker.StoreEvents)
	if err != nil {
		return domain.Envelope{}, 0, err
	}
	env := domain.Envelope{ID: writer.NewEventID(), Type: ev.EventType(), Version: ev.SchemaVersion(),
		Time: time.Now().UTC(), Aggregate: "store", Data: ev}
	seqs, err := store.AppendAtomic(ctx, []broker.Append{{Subject: broker.StoreEvents, ExpectedSeq: expected,
		Events: []domain.Envelope{env}}})
	if err != nil {
		return domain.Envelope{}, 0, fmt.Errorf("record %s: %w", ev.EventType(), err)
	}
	return env, seqs[0], nil
}
