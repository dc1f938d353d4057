package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/broker"
)

// historyFetch is how many stream messages History asks for at a time.
const historyFetch = 256

// History reads the events the TELEMETRY stream keeps from since on,
// oldest first, and hands fn those whose name matches filter (a NATS
// subject pattern over names: task.*, agent.>, > for all). It stops at
// the stream's end as it was when it started. Reading the stream needs
// the admin token.
func History(ctx context.Context, nc *nats.Conn, since time.Time, filter string, fn func(Event)) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("read telemetry history: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, broker.TelemetryStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
	if err != nil {
		return fmt.Errorf("read telemetry history: %w", err)
	}
	for {
		batch, err := cons.FetchNoWait(historyFetch)
		if err != nil {
			return fmt.Errorf("read telemetry history: %w", err)
		}
		last := true
		for msg := range batch.Messages() {
			eachEvent(msg.Data(), since, filter, fn)
			meta, err := msg.Metadata()
			last = err != nil || meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("read telemetry history: %w", err)
		}
		if last {
			return nil
		}
	}
}

// eachEvent decodes one stored message: one event a line (a message
// stored before batching held one event).
func eachEvent(data []byte, since time.Time, filter string, fn func(Event)) {
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		var ev Event
		if len(line) == 0 || json.Unmarshal(line, &ev) != nil {
			continue
		}
		if !ev.Time.Before(since) && server.SubjectMatchesFilter(ev.Event, filter) {
			fn(ev)
		}
	}
}
