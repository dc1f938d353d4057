package logsink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

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

func TestPublisherLinesArriveInOrder(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	log := logsink.New(pub, "n1", logsink.LevelDebug).Module("test")
	const n = 500
	for i := range n {
		log.Info().Int("i", i).Msg("counted") // zerolog reuses its buffer
	}
	require.NoError(t, pub.Flush())
	waitStored(t, st, n)
	for seq := uint64(1); seq <= n; seq++ {
		msg := storedMsg(t, st, seq)
		require.Equal(t, broker.LogHub("n1"), msg.Subject)
		require.False(t, bytes.HasSuffix(msg.Data, []byte("\n")))
		var m map[string]any
		require.NoError(t, json.Unmarshal(msg.Data, &m))
		require.EqualValues(t, seq-1, m["i"])
	}
	require.Zero(t, pub.Dropped())
}

func TestPublisherDoesNotKeepTheCallersBuffer(t *testing.T) {
	t.Parallel()
	b, st := startLogs(t)
	pub := logsink.NewPublisher(b.Conn, broker.LogHub("n1"))
	buf := []byte(`{"message":"first"}` + "\n")
	_, err := pub.Write(buf)
	require.NoError(t, err)
	copy(buf, `{"message":"later"}`)
	require.NoError(t, pub.Flush())
	waitStored(t, st, 1)
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
	n, err := pub.Write([]byte(`{"message":"nowhere"}` + "\n"))
	require.NoError(t, err)
	require.Equal(t, len(`{"message":"nowhere"}`+"\n"), n)
	require.EqualValues(t, 1, pub.Dropped())
	require.Error(t, pub.Flush())
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
	published := uint64(writers*each - inFallback)
	waitStored(t, st, published)
	// Every line went one way or the other, whole.
	require.NoError(t, b.Conn.Publish(broker.LogHub("marker"), []byte(`{}`)))
	waitStored(t, st, published+1)
	require.Equal(t, broker.LogHub("marker"), storedMsg(t, st, published+1).Subject)
	for _, line := range strings.Split(strings.TrimSuffix(fallback.String(), "\n"), "\n") {
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
		info, err := st.Info(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 50*round, info.State.Msgs, "stored by the time Stored returns, and no barrier kept")
	}
}

func TestStoredWithoutAStreamIsAnError(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	pub := logsink.NewPublisher(b.Conn, "nowhere.kept")
	require.ErrorContains(t, pub.Stored(context.Background()), "wait for stored log lines")
}
