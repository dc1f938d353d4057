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
	st, err := js.Stream(ctx, broker.TelemetryStream)
	if err != nil {
		return fmt.Errorf("read telemetry history: %w", err)
	}
	end := st.CachedInfo().State.LastSeq
	if end == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
	if err != nil {
		return fmt.Errorf("read telemetry history: %w", err)
	}
	for more := true; more; {
		if more, err = fetchHistory(cons, end, since, filter, fn); err != nil {
			return err
		}
	}
	return nil
}

// fetchHistory hands fn the events of the next stored messages up to end,
// and reports whether more may follow.
func fetchHistory(cons jetstream.Consumer, end uint64, since time.Time, filter string, fn func(Event)) (bool, error) {
	batch, err := cons.FetchNoWait(historyFetch)
	if err != nil {
		return false, fmt.Errorf("read telemetry history: %w", err)
	}
	more := false // no message: nothing stored since
	for msg := range batch.Messages() {
		meta, err := msg.Metadata()
		if err != nil || meta.Sequence.Stream > end {
			return false, nil // stored after History started
		}
		eachEvent(msg.Data(), since, filter, fn)
		more = meta.Sequence.Stream < end
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return false, fmt.Errorf("read telemetry history: %w", err)
	}
	return more, nil
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
