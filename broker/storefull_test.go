package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
)

// TestWriteFaultClearsWithAJetStreamRestart fills a tmpfs under the
// server's store until a write fails: the server then reports the fault
// (and answers that stream's writes no more); once space returns,
// RestartJetStream clears it and appends are stored again, with every
// acknowledged event still there.
func TestWriteFaultClearsWithAJetStreamRestart(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: could not mount a 16 MiB tmpfs on %s (needs root or CAP_SYS_ADMIN): %v: %s",
			dir, err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { require.NoError(t, exec.Command("umount", dir).Run()) })
	auth := broker.NewAuthenticator()
	auth.MarkReady()
	srv, err := broker.StartServer(broker.ServerConfig{DataDir: dir, Auth: auth, Log: logsink.Nop()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.ConnectInProcess(auth.HubSecret(), "test")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	store, err := broker.OpenEventStore(context.Background(), nc)
	require.NoError(t, err)
	require.NoError(t, srv.StoreFault())

	filler := filepath.Join(dir, "filler")
	require.NoError(t, fill(filler))
	big := strings.Repeat("x", 256<<10)
	acked := 0
	for i := 0; i < 20 && srv.StoreFault() == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := store.AppendAtomic(ctx, []broker.Append{bigAppend(i, big)})
		cancel()
		if err == nil {
			acked++
		}
	}
	require.ErrorContains(t, srv.StoreFault(), "no space left on device", "the server reports its write error")

	require.NoError(t, os.Remove(filler))
	require.ErrorContains(t, srv.StoreFault(), "write error", "space alone does not clear it")
	require.NoError(t, srv.RestartJetStream())
	require.NoError(t, srv.StoreFault())
	_, err = store.AppendAtomic(context.Background(), []broker.Append{bigAppend(100, "after")})
	require.NoError(t, err, "stored again after the restart")
	info, err := store.Info(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(acked+1), info.State.Msgs, "every acknowledged event is there")
}

func bigAppend(i int, text string) broker.Append {
	e := domain.TaskProgressed{AgentID: "a", Message: text}
	env := domain.Envelope{ID: fmt.Sprintf("evt-full-%d", i), Type: e.EventType(), Version: 1,
		Time: time.Unix(1_700_000_000, 0).UTC(), Aggregate: fmt.Sprintf("task-%d", i), RequestID: "req-1", Data: e}
	return broker.Append{Subject: broker.TaskEvents(env.Aggregate), Events: []domain.Envelope{env}}
}

// fill writes path until the volume has no space left.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return err
				}
				break
			}
		}
	}
	return nil
}
