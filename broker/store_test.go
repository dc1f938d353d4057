package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/domain"
)

var eventN struct {
	sync.Mutex
	n int
}

// events makes n envelopes for one task with fresh ids.
func events(task string, n int) []domain.Envelope {
	eventN.Lock()
	defer eventN.Unlock()
	out := make([]domain.Envelope, n)
	for i := range out {
		eventN.n++
		e := domain.TaskProgressed{AgentID: "a", Message: fmt.Sprint(i)}
		out[i] = domain.Envelope{ID: fmt.Sprintf("evt-%d", eventN.n), Type: e.EventType(), Version: 1,
			Time: time.Unix(1_700_000_000, 0).UTC(), Aggregate: task, RequestID: "req-1", Data: e}
	}
	return out
}

func openStore(t *testing.T) *broker.EventStore {
	t.Helper()
	b := brokertest.Start(t, 0)
	store, err := broker.OpenEventStore(context.Background(), b.Conn)
	require.NoError(t, err)
	return store
}

func TestAppendTwoWritersSameExpectedSeqOneWins(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("events=%d", size), func(t *testing.T) {
			t.Parallel()
			store := openStore(t)
			ctx := context.Background()
			subj := broker.TaskEvents("task-1")
			expected := uint64(0)
			for round := 0; round < 10; round++ {
				var wg sync.WaitGroup
				results := make([][]uint64, 2)
				errs := make([]error, 2)
				for w := range 2 {
					wg.Go(func() {
						a := broker.Append{Subject: subj, ExpectedSeq: expected, Events: events("task-1", size)}
						results[w], errs[w] = store.AppendAtomic(ctx, []broker.Append{a})
					})
				}
				wg.Wait()
				wins := 0
				for w := range 2 {
					if errs[w] == nil {
						wins++
						expected = results[w][size-1]
					} else {
						require.ErrorIs(t, errs[w], broker.ErrConflict)
					}
				}
				require.Equal(t, 1, wins, "round %d: exactly one writer wins", round)
				last, err := store.LastSeq(ctx)
				require.NoError(t, err)
				require.Equal(t, uint64((round+1)*size), last)
			}
		})
	}
}

func TestAppendRetryDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 4} {
		t.Run(fmt.Sprintf("events=%d", size), func(t *testing.T) {
			t.Parallel()
			store := openStore(t)
			ctx := context.Background()
			a := broker.Append{Subject: broker.TaskEvents("task-r"), ExpectedSeq: 0, Events: events("task-r", size)}
			first, err := store.AppendAtomic(ctx, []broker.Append{a})
			require.NoError(t, err)
			// The same append again, as after a lost ack: on a single server the
			// expected-sequence check fails before dedupe; the store must see
			// that the events are already there and answer as the first time.
			again, err := store.AppendAtomic(ctx, []broker.Append{a})
			require.NoError(t, err)
			require.Equal(t, first, again)
			last, err := store.LastSeq(ctx)
			require.NoError(t, err)
			require.Equal(t, uint64(size), last)
			var seen []uint64
			require.NoError(t, store.Read(ctx, broker.ReadOpts{}, func(env domain.Envelope) error {
				seen = append(seen, env.Seq)
				return nil
			}))
			require.Equal(t, first, seen)
		})
	}
}

func TestAppendStaleExpectationIsConflict(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	ctx := context.Background()
	subj := broker.TaskEvents("task-c")
	_, err := store.AppendAtomic(ctx, []broker.Append{{Subject: subj, Events: events("task-c", 1)}})
	require.NoError(t, err)
	_, err = store.AppendAtomic(ctx, []broker.Append{{Subject: subj, ExpectedSeq: 0, Events: events("task-c", 1)}})
	require.ErrorIs(t, err, broker.ErrConflict)
	_, err = store.AppendAtomic(ctx, []broker.Append{{Subject: subj, ExpectedSeq: 1, Events: events("task-c", 2)}})
	require.NoError(t, err)
}

// TestAppendWithoutEventsIsRefused: an append with no events is an error
// on both write paths (the pipelined one used to panic), and stores nothing.
func TestAppendWithoutEventsIsRefused(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	ctx := context.Background()
	empty := []broker.Append{{Subject: broker.TaskEvents("task-e")}}
	_, err := store.AppendAtomic(ctx, empty)
	require.ErrorContains(t, err, "no events")
	res := store.Append(ctx, empty)
	require.Len(t, res, 1)
	require.ErrorContains(t, res[0].Err, "no events")
	last, err := store.LastSeq(ctx)
	require.NoError(t, err)
	require.Zero(t, last)
}

func TestAppendGroupIsAtomic(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	ctx := context.Background()
	_, err := store.AppendAtomic(ctx, []broker.Append{{Subject: broker.TaskEvents("b"), Events: events("b", 1)}})
	require.NoError(t, err)
	// One good append and one with a stale expectation: nothing is stored.
	group := []broker.Append{
		{Subject: broker.TaskEvents("a"), Events: events("a", 2)},
		{Subject: broker.TaskEvents("b"), ExpectedSeq: 0, Events: events("b", 1)},
	}
	_, err = store.AppendAtomic(ctx, group)
	require.ErrorIs(t, err, broker.ErrConflict)
	last, err := store.LastSeq(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), last)
	// Two appends on one subject in one group: only the first one's
	// expectation is checked; the second follows it.
	group = []broker.Append{
		{Subject: broker.TaskEvents("b"), ExpectedSeq: 1, Events: events("b", 1)},
		{Subject: broker.TaskEvents("a"), Events: events("a", 2)},
		{Subject: broker.TaskEvents("b"), ExpectedSeq: 999, Events: events("b", 2)},
	}
	seqs, err := store.AppendAtomic(ctx, group)
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 3, 4, 5, 6}, seqs)
}

func TestReadRangesAndFilters(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	ctx := context.Background()
	read := func(opts broker.ReadOpts) []uint64 {
		var seqs []uint64
		require.NoError(t, store.Read(ctx, opts, func(env domain.Envelope) error {
			seqs = append(seqs, env.Seq)
			return nil
		}))
		return seqs
	}
	require.Empty(t, read(broker.ReadOpts{}), "empty stream")
	for i := range 5 {
		task := fmt.Sprintf("t%d", i%2)
		_, err := store.AppendAtomic(ctx, []broker.Append{{Subject: broker.TaskEvents(task), ExpectedSeq: lastOn(t, store, task), Events: events(task, 2)}})
		require.NoError(t, err)
	}
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, read(broker.ReadOpts{}))
	require.Equal(t, []uint64{4, 5, 6}, read(broker.ReadOpts{From: 4, Until: 6}))
	require.Equal(t, []uint64{3, 4, 7, 8}, read(broker.ReadOpts{Subject: broker.TaskEvents("t1")}))
	require.Empty(t, read(broker.ReadOpts{Subject: broker.TaskEvents("nobody")}))
	require.Empty(t, read(broker.ReadOpts{From: 11}))
	var n int
	require.NoError(t, store.Read(ctx, broker.ReadOpts{}, func(domain.Envelope) error {
		n++
		if n == 3 {
			return broker.ErrStop
		}
		return nil
	}))
	require.Equal(t, 3, n)
	boom := errors.New("boom")
	require.ErrorIs(t, store.Read(ctx, broker.ReadOpts{}, func(domain.Envelope) error { return boom }), boom)
}

// lastOn is the expected sequence for a task: its newest event's sequence.
func lastOn(t *testing.T, store *broker.EventStore, task string) uint64 {
	var last uint64
	require.NoError(t, store.Read(context.Background(), broker.ReadOpts{Subject: broker.TaskEvents(task)}, func(env domain.Envelope) error {
		last = env.Seq
		return nil
	}))
	return last
}
