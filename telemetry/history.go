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

// HistoryPageBytes is how many bytes of stored messages one page holds
// at most (and one message more): far below the server's max payload.
const HistoryPageBytes = 256 << 10

// History reads the events the TELEMETRY stream keeps from since on,
// oldest first, and hands fn those whose name matches filter (a NATS
// subject pattern over names: task.*, agent.>, > for all). It stops at
// the stream's end as it was when it started. It reads with nc's own
// JetStream access: the hub's; clients ask the hub (telemetry.history).
func History(ctx context.Context, nc *nats.Conn, since time.Time, filter string, fn func(Event)) error {
	return EachPage(ctx, func(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
		return ReadHistoryPage(ctx, nc, q, HistoryPageBytes)
	}, since, filter, fn)
}

// EachPage reads page after page with read, handing fn every event.
func EachPage(ctx context.Context, read func(context.Context, HistoryQuery) (HistoryPage, error),
	since time.Time, filter string, fn func(Event)) error {
	q := HistoryQuery{Since: since, Filter: filter}
	for {
		page, err := read(ctx, q)
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			fn(ev)
		}
		if page.Next == 0 {
			return nil
		}
		q.From, q.End = page.Next, page.End
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

// HistoryQuery asks for one page of kept events: those from Since on whose
// name matches Filter. From and End continue a read: the stream sequence
// to go on from, and the last one to read (as the first page found it).
type HistoryQuery struct {
	Since  time.Time `json:"since"`
	Filter string    `json:"filter"`
	From   uint64    `json:"from,omitempty"`
	End    uint64    `json:"end,omitempty"`
}

// HistoryPage is one page of kept events. Next is the From of the next
// page, zero when the read is done; End is the End to ask with.
type HistoryPage struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next,omitempty"`
	End    uint64  `json:"end,omitempty"`
}

// ReadHistoryPage reads the next page of kept events: whole stored
// messages until their size passes budget bytes, or the end. The hub
// serves it as the telemetry.history command, so a client never needs the
// JetStream API.
func ReadHistoryPage(ctx context.Context, nc *nats.Conn, q HistoryQuery, budget int) (HistoryPage, error) {
	page := HistoryPage{Events: []Event{}}
	js, err := jetstream.New(nc)
	if err != nil {
		return page, fmt.Errorf("read telemetry history: %w", err)
	}
	st, err := js.Stream(ctx, broker.TelemetryStream)
	if err != nil {
		return page, fmt.Errorf("read telemetry history: %w", err)
	}
	if page.End = q.End; page.End == 0 {
		page.End = st.CachedInfo().State.LastSeq
	}
	if page.End == 0 || q.From > page.End {
		return page, nil
	}
	cons, err := st.OrderedConsumer(ctx, pageConsumer(q))
	if err != nil {
		return page, fmt.Errorf("read telemetry history: %w", err)
	}
	return page, fillPage(cons, &page, q, budget)
}

// pageConsumer starts at the page's first sequence, or at Since.
func pageConsumer(q HistoryQuery) jetstream.OrderedConsumerConfig {
	if q.From > 0 {
		return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: q.From}
	}
	return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &q.Since}
}

// fillPage adds stored messages' events to page until the budget is spent
// (then sets Next) or the end is reached.
func fillPage(cons jetstream.Consumer, page *HistoryPage, q HistoryQuery, budget int) error {
	used := 0
	for {
		batch, err := cons.FetchNoWait(historyFetch)
		if err != nil {
			return fmt.Errorf("read telemetry history: %w", err)
		}
		got, done := fillFrom(batch, page, q, budget, &used)
		if done {
			return nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("read telemetry history: %w", err)
		}
		if !got {
			return nil
		}
	}
}

// fillFrom adds one batch's events to page; done says the page is full
// or at its end. It reads the batch to its end either way, so that the
// fetch's own goroutine ends with it (a no-wait batch ends at once).
func fillFrom(batch jetstream.MessageBatch, page *HistoryPage, q HistoryQuery, budget int, used *int) (got, done bool) {
	for msg := range batch.Messages() {
		if done {
			continue
		}
		meta, err := msg.Metadata()
		if err != nil || meta.Sequence.Stream > page.End {
			done = true
			continue
		}
		got = true
		eachEvent(msg.Data(), q.Since, q.Filter, func(ev Event) { page.Events = append(page.Events, ev) })
		if *used += len(msg.Data()); meta.Sequence.Stream == page.End {
			done = true
		} else if *used >= budget {
			page.Next, done = meta.Sequence.Stream+1, true
		}
	}
	return got, done
}
