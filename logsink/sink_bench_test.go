package logsink_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
)

// BenchmarkSink times a sink writing b.N typical records (about 300 bytes)
// that the stream already holds, from Start until Stop returns with all of
// them written. Publishing them beforehand is not timed.
func BenchmarkSink(b *testing.B) {
	bundle, st := startLogs(b)
	publish(b, logsink.NewPublisher(bundle.Conn, broker.LogHub("n1")), 0, b.N)
	s := logsink.NewSink(st, logsink.SinkConfig{Dir: b.TempDir(), MaxBackups: 1000})
	b.ResetTimer()
	start := time.Now()
	require.NoError(b, s.Start(b.Context()))
	s.Stop()
	elapsed := time.Since(start)
	b.StopTimer()
	require.EqualValues(b, b.N, s.Written())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
}

// BenchmarkPublisher is the cost of one Write of a typical record: what a
// log call pays on top of formatting the line.
func BenchmarkPublisher(b *testing.B) {
	bundle, _ := startLogs(b)
	pub := logsink.NewPublisher(bundle.Conn, broker.LogHub("n1"))
	line := record(1)
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	for range b.N {
		if _, err := pub.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.NoError(b, pub.Flush())
	require.Zero(b, pub.Dropped())
}
