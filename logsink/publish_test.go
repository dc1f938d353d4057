package logsink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/logsink"
)

func storedMsg(t *testing.T, st jetstream.Stream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	msg, err := st.GetMsg(context.Background(), seq)
	require.NoError(t, err)
	return msg
}

// storedLines reads every record on LogHub("n1") in the stream and returns
// their lines, in order, and how many records held them.
func storedLines(t *testing.T, st jetstream.Stream) ([]string, int) {
	t.Helper()
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	var lines []string
	records := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		msg := storedMsg(t, st, seq)
		if msg.Subject != broker.LogHub("n1") {
			continue
		}
		require.False(t, bytes.HasSuffix(msg.Data, []byte("\n")), "a record does not end with a newline")
		records++
		lines = append(lines, strings.Split(string(msg.Data), "\n")...)
	}
	return lines, records
}

func TestPublisherLinesArriveInOrderInFewRecords(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	log := logsink.New(pub, "n1", logsink.LevelDebug).Module("test")
	const n = 500
	for i := range n {
		log.Info().Int("i", i).Msg("counted") // zerolog reuses its buffer
	}
	require.NoError(t, pub.Stored(context.Background()))
	lines, records := storedLines(t, st)
	require.Len(t, lines, n)
	for i, line := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		require.EqualValues(t, i, m["i"])
	}
	require.Less(t, records, n/10, "lines written together share records")
	require.Zero(t, pub.Dropped())
}

// A line alone is published after a few milliseconds, with no Flush.
func TestPublisherPublishesALoneLineSoon(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	_, err := pub.Write([]byte(`{"message":"alone"}` + "\n"))
	require.NoError(t, err)
	waitStored(t, st, 1)
	require.Equal(t, `{"message":"alone"}`, string(storedMsg(t, st, 1).Data))
}

// A record never grows past 64 KiB: many lines at once fill several.
func TestPublisherSplitsLargeBurstsIntoRecords(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	const n = 1000 // about 300 KB
	for i := range n {
		_, err := pub.Write(record(i))
		require.NoError(t, err)
	}
	require.NoError(t, pub.Stored(context.Background()))
	lines, records := storedLines(t, st)
	require.Len(t, lines, n)
	require.GreaterOrEqual(t, records, 5)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		require.LessOrEqual(t, len(storedMsg(t, st, seq).Data), 64<<10)
	}
}

func TestPublisherDoesNotKeepTheCallersBuffer(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	buf := []byte(`{"message":"first"}` + "\n")
	_, err := pub.Write(buf)
	require.NoError(t, err)
	copy(buf, `{"message":"later"}`)
	require.NoError(t, pub.Stored(context.Background()))
	require.Equal(t, `{"message":"first"}`, string(storedMsg(t, st, 1).Data))
}

func TestPublisherAfterCloseWritesToTheFallback(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	_, err := pub.Write([]byte(`{"message":"published"}` + "\n"))
	require.NoError(t, err)
	var fallback bytes.Buffer
	require.NoError(t, pub.Close(&fallback))
	n, err := pub.Write([]byte(`{"message":"late 1"}` + "\n"))
	require.NoError(t, err)
	require.Equal(t, len(`{"message":"late 1"}`+"\n"), n)
	_, err = pub.Write([]byte(`{"message":"late 2"}`)) // no newline
	require.NoError(t, err)

	require.Equal(t, `{"message":"late 1"}`+"\n"+`{"message":"late 2"}`+"\n", fallback.String())
	// Had the late lines been published, they would precede this marker.
	require.NoError(t, b.Conn.Publish(broker.LogHub("marker"), []byte(`{}`)))
	waitStored(t, st, 2)
	require.Equal(t, broker.LogHub("marker"), storedMsg(t, st, 2).Subject)
	require.Zero(t, pub.Dropped())

	require.NoError(t, pub.Close(nil)) // a later Close only replaces the fallback
	_, err = pub.Write([]byte(`{"message":"lost"}` + "\n"))
	require.NoError(t, err)
	require.EqualValues(t, 1, pub.Dropped())
}

func TestPublisherCountsLinesItCannotPublish(t *testing.T) {
	t.Parallel()
	b, _ := startLogs(t)
	nc, err := b.Server.ConnectInProcess(b.Auth.HubSecret(), "closed")
	require.NoError(t, err)
	pub := logsink.NewPublisher(nc, broker.LogHub("n1"))
	nc.Close()
	for range 2 {
		n, err := pub.Write([]byte(`{"message":"nowhere"}` + "\n"))
		require.NoError(t, err)
		require.Equal(t, len(`{"message":"nowhere"}`+"\n"), n)
	}
	require.Error(t, pub.Flush())
	require.EqualValues(t, 2, pub.Dropped(), "every line of the record that could not go")
}

func TestPublisherConcurrentWritersAndClose(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	const writers, each = 8, 500
	var fallback bytes.Buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			log := logsink.New(pub, "n1", logsink.LevelDebug).Module(fmt.Sprintf("w%d", w))
			for i := range each {
				log.Info().Int("i", i).Msg("concurrent")
				if w == 0 && i == each/2 {
					require.NoError(t, pub.Close(&fallback))
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, pub.Dropped())
	inFallback := strings.Count(fallback.String(), "\n")
	// Close published what it had: a marker after it is stored after it.
	require.NoError(t, b.Conn.Publish(broker.LogHub("marker"), []byte(`{}`)))
	require.Eventually(t, func() bool {
		info, err := st.Info(context.Background())
		if err != nil || info.State.LastSeq == 0 {
			return false
		}
		msg, err := st.GetMsg(context.Background(), info.State.LastSeq)
		return err == nil && msg.Subject == broker.LogHub("marker")
	}, waitFor, 5*time.Millisecond)
	// Every line went one way or the other, whole.
	published, _ := storedLines(t, st)
	require.Len(t, published, writers*each-inFallback)
	for _, line := range append(published, strings.Split(strings.TrimSuffix(fallback.String(), "\n"), "\n")...) {
		require.True(t, json.Valid([]byte(line)), line)
	}
}

func TestStoredWaitsUntilTheStreamHasEveryLine(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	log := logsink.New(pub, "n1", logsink.LevelDebug)
	ctx := context.Background()
	for round := 1; round <= 20; round++ {
		for range 50 {
			log.Info().Msg("line")
		}
		require.NoError(t, pub.Stored(ctx))
		lines, _ := storedLines(t, st)
		require.Len(t, lines, 50*round, "stored by the time Stored returns, and no barrier kept")
	}
}

func TestStoredWithoutAStreamIsAnError(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	pub := logsink.NewPublisher(b.Conn, "nowhere.kept")
	require.ErrorContains(t, pub.Stored(context.Background()), "wait for stored log lines")
}
