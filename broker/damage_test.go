package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/domain"
)

// damagedStore appends n single events, stops the server, XORs size bytes
// at off in the last block of the events stream (off < 0 counts from the
// end), and opens the store again.
func damagedStore(t *testing.T, n int, off, size int64) *broker.EventStore {
	t.Helper()
	b := brokertest.Start(t, 0)
	ctx := context.Background()
	store, err := broker.OpenEventStore(ctx, b.Conn)
	require.NoError(t, err)
	for i := range n {
		_, err := store.AppendAtomic(ctx, []broker.Append{{Subject: broker.TaskEvents(taskN(i)), Events: events(taskN(i), 1)}})
		require.NoError(t, err)
	}
	b.Conn.Close()
	b.Server.Shutdown()
	blocks, err := filepath.Glob(filepath.Join(b.DataDir, "jetstream", "jetstream", "*", "streams", broker.EventsStream, "msgs", "*.blk"))
	require.NoError(t, err)
	require.NotEmpty(t, blocks)
	xorFile(t, blocks[len(blocks)-1], off, size)
	again := brokertest.StartIn(t, b.DataDir)
	store, err = broker.OpenEventStore(ctx, again.Conn)
	require.NoError(t, err)
	return store
}

func taskN(i int) string { return "task-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }

func xorFile(t *testing.T, path string, off, size int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if off < 0 {
		off += int64(len(data))
	}
	for i := off; i < off+size; i++ {
		data[i] ^= 0xFF
	}
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// TestReadOfDamagedLastRecordEnds: a damaged last record, which the
// stream still counts, used to hang Read forever; now the read ends
// within its stall and names the sequence lost.
func TestReadOfDamagedLastRecordEnds(t *testing.T) {
	t.Parallel()
	store := damagedStore(t, 20, -40, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seqs []uint64
	start := time.Now()
	err := store.Read(ctx, broker.ReadOpts{Stall: time.Second}, func(env domain.Envelope) error {
		seqs = append(seqs, env.Seq)
		return nil
	})
	require.Less(t, time.Since(start), 10*time.Second)
	var loss *broker.LossError
	require.ErrorAs(t, err, &loss)
	require.ErrorIs(t, err, broker.ErrLoss)
	require.Equal(t, []broker.SeqRange{{First: 20, Last: 20}}, loss.Missing)
	require.Len(t, seqs, 19, "every readable event is delivered first")

	// A read of one subject ends too.
	err = store.Read(ctx, broker.ReadOpts{Subject: broker.TaskEvents(taskN(19)), Stall: time.Second},
		func(domain.Envelope) error { return nil })
	require.ErrorIs(t, err, broker.ErrLoss)
}

// TestReadOfDamagedMiddleReportsTheGap: damage inside a block makes the
// server skip a record it still counts; the read reports it, where it used
// to end as if nothing were wrong.
func TestReadOfDamagedMiddleReportsTheGap(t *testing.T) {
	t.Parallel()
	store := damagedStore(t, 40, 3000, 16)
	n := 0
	err := store.Read(context.Background(), broker.ReadOpts{}, func(domain.Envelope) error { n++; return nil })
	var loss *broker.LossError
	require.ErrorAs(t, err, &loss)
	require.Positive(t, loss.Lost())
	require.EqualValues(t, 40, uint64(n)+loss.Lost(), "delivered and missing make up the stream")
}

// TestReadSkipsDeletedSequences: the gaps a rollup leaves are not loss.
func TestReadSkipsDeletedSequences(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	ctx := context.Background()
	subj := broker.TaskEvents("task-r")
	seqs, err := store.AppendAtomic(ctx, []broker.Append{{Subject: subj, Events: events("task-r", 3)}})
	require.NoError(t, err)
	_, err = store.AppendAtomic(ctx, []broker.Append{{Subject: broker.TaskEvents("task-s"), Events: events("task-s", 1)}})
	require.NoError(t, err)
	_, err = store.AppendAtomic(ctx, []broker.Append{{Subject: subj, ExpectedSeq: seqs[2], Rollup: true,
		Events: events("task-r", 1)}})
	require.NoError(t, err)
	var got []uint64
	require.NoError(t, store.Read(ctx, broker.ReadOpts{}, func(env domain.Envelope) error {
		got = append(got, env.Seq)
		return nil
	}))
	require.Equal(t, []uint64{4, 5}, got)
}
