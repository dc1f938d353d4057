package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// logsMaxAge bounds the LOGS stream: records wait here for the log sink; a
// sink that stays down longer than this, or longer than the stream's size
// allows, loses the oldest (logs are not the source of truth, the event
// stream is).
const logsMaxAge = 7 * 24 * time.Hour

// OpenLogs creates or updates the LOGS stream, bounded to maxBytes, and
// returns it.
func OpenLogs(ctx context.Context, nc *nats.Conn, maxBytes int64) (jetstream.Stream, error) {
	// Logs are also on stdout and in the sink's files: they need no fsync
	// per record, which would make a burst of logging crawl when the
	// server syncs every write for the event stream.
	return openLimited(ctx, nc, LogsStream, LogsAll, logsMaxAge, maxBytes,
		"AgentCom log records of the hub and the sidecars, until the log sink writes them")
}

// OpenTelemetry creates or updates the TELEMETRY stream: recent telemetry,
// bounded by age and size, oldest dropped first.
func OpenTelemetry(ctx context.Context, nc *nats.Conn, maxAge time.Duration, maxBytes int64) error {
	_, err := openLimited(ctx, nc, TelemetryStream, TelemetryHistoryAll, maxAge, maxBytes,
		"AgentCom telemetry, kept for a while to read back; never read by business logic")
	return err
}

// openLimited creates or updates a best-effort stream of one subject
// family: file storage without a sync per message, limited by age and
// size, oldest dropped first.
func openLimited(ctx context.Context, nc *nats.Conn, name, subject string, maxAge time.Duration, maxBytes int64,
	description string) (jetstream.Stream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    []string{subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		Replicas:    1,
		PersistMode: jetstream.AsyncPersistMode,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	return st, nil
}
