package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
)

// BenchmarkAppendGroup compares the two ways the hub appends a group of n
// single-event commands on distinct tasks: one atomic batch, or n
// pipelined publishes. One op is one whole group; see ns/cmd. Its figures
// choose hub.DefaultMinAtomic (docs/durability.md).
func BenchmarkAppendGroup(b *testing.B) {
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=1s", time.Second}} {
		for _, n := range []int{1, 2, 4, 8, 32, 128} {
			for _, mode := range []string{"atomic", "pipelined"} {
				b.Run(fmt.Sprintf("%s/%s/n=%d", sync.name, mode, n), func(b *testing.B) {
					benchGroup(b, sync.interval, mode == "atomic", n)
				})
			}
		}
	}
}

func benchGroup(b *testing.B, interval time.Duration, atomic bool, n int) {
	bundle := brokertest.Start(b, interval)
	store, err := broker.OpenEventStore(context.Background(), bundle.Conn)
	require.NoError(b, err)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		group := make([]broker.Append, n)
		for j := range group {
			task := fmt.Sprintf("t%d-%d", i, j)
			group[j] = broker.Append{Subject: broker.TaskEvents(task), Events: events(task, 1)}
		}
		var p *broker.Pending
		if atomic {
			p = store.PublishAtomic(group)
		} else {
			p = store.Publish(group)
		}
		for _, r := range p.Wait(ctx) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/cmd")
}
