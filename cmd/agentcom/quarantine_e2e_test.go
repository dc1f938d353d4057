package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
)

// storeFutureEvent appends, behind a stopped hub's back, an event of a
// schema version this build does not know (as after a downgrade) to
// task id's subject, and returns its sequence.
func storeFutureEvent(t *testing.T, dir, id string) uint64 {
	t.Helper()
	_, nc, closeStore := openStoreOffline(t, dir)
	defer closeStore()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ack, err := js.Publish(context.Background(), broker.TaskEvents(id), []byte(`{"id":"evt-future","type":"task.progressed",`+
		`"v":99,"time":"2030-01-01T00:00:00Z","aggregate":"`+id+`","data":{"agent_id":"a1","generation":1}}`))
	require.NoError(t, err)
	return ack.Sequence
}

// TestQuarantineSkipsAPoisonEvent: a hub stops at an event it cannot read
// and names the way out; quarantine refuses a readable event, skips the
// poison one, and the hub serves again with the task's other events.
func TestQuarantineSkipsAPoisonEvent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProc(t, dir)
	id := submit(t, h, "survives its poison event")
	h.terminate(t)
	seq := storeFutureEvent(t, dir, id)

	out, code, ended := runBounded(t, 30*time.Second, "hub", "--data-dir", dir, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	require.True(t, ended, "the hub hung on a poison event")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "agentcom store quarantine "+itoa(seq)+" skips it")

	out, code, _ = runBounded(t, 30*time.Second, "store", "quarantine", "1", "--data-dir", dir)
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "quarantine event 1 (task.submitted of "+id+"): the event is readable")
	out, code, _ = runBounded(t, 30*time.Second, "store", "quarantine", itoa(seq), "--data-dir", dir, "--by", "ops")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "event "+itoa(seq)+" quarantined: ")
	require.Contains(t, out, "task.progressed")
	out, code, _ = runBounded(t, 30*time.Second, "store", "quarantine", itoa(seq), "--data-dir", dir)
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "quarantined already")

	again := startHubProc(t, dir)
	out, errOut, code := cli(t, again, "task", "show", id)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "survives its poison event")
	require.Regexp(t, `(?m)^status\s+queued$`, out)
	submit(t, again, "after the quarantine")
	again.terminate(t)
	out, code, _ = runBounded(t, 30*time.Second, "replay", "--data-dir", dir)
	require.Equal(t, 0, code, out)
}

// TestPurgeBehindTheHubsBackIsLoss: events removed with the store opened
// offline (one task's subject, or the whole stream) are reported as loss
// at the next start, even though the snapshot still holds the tasks.
func TestPurgeBehindTheHubsBackIsLoss(t *testing.T) {
	t.Parallel()
	for name, purge := range map[string]func(ids []string) []jetstream.StreamPurgeOpt{
		"one task": func(ids []string) []jetstream.StreamPurgeOpt {
			return []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(broker.TaskEvents(ids[1]))}
		},
		"whole stream": func([]string) []jetstream.StreamPurgeOpt { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, ids := storeWithTasks(t, 4)
			_, nc, closeStore := openStoreOffline(t, dir)
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			stream, err := js.Stream(context.Background(), broker.EventsStream)
			require.NoError(t, err)
			require.NoError(t, stream.Purge(context.Background(), purge(ids)...))
			closeStore()

			h := startHubProc(t, dir)
			requireLoss(t, h, "were removed behind the hub's back")
		})
	}
}
