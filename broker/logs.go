package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Log stream limits: records wait here for the log sink; a sink that
// stays down longer than this loses the oldest (logs are not the source of
// truth, the event stream is).
const (
	logsMaxAge   = 7 * 24 * time.Hour
	logsMaxBytes = 1 << 30
)

// OpenLogs creates or updates the LOGS stream and returns it.
func OpenLogs(ctx context.Context, nc *nats.Conn) (jetstream.Stream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        LogsStream,
		Description: "AgentCom log records of the hub and the sidecars, until the log sink writes them",
		Subjects:    []string{LogsAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      logsMaxAge,
		MaxBytes:    logsMaxBytes,
		Replicas:    1,
		// Logs are also on stdout and in the sink's files: they need no
		// fsync per record, which would make a burst of logging crawl when
		// the server syncs every write for the event stream.
		PersistMode: jetstream.AsyncPersistMode,
	})
	if err != nil {
		return nil, fmt.Errorf("create logs stream: %w", err)
	}
	return st, nil
}

// OpenTelemetry creates or updates the TELEMETRY stream: recent telemetry,
// bounded by age and size, oldest dropped first.
func OpenTelemetry(ctx context.Context, nc *nats.Conn, maxAge time.Duration, maxBytes int64) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        TelemetryStream,
		Description: "AgentCom telemetry, kept for a while to read back; never read by business logic",
		Subjects:    []string{TelemetryAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		Replicas:    1,
		PersistMode: jetstream.AsyncPersistMode, // best effort, like all telemetry
	})
	if err != nil {
		return fmt.Errorf("create telemetry stream: %w", err)
	}
	return nil
}
