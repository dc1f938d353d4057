package hub

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
	"github.com/agentcom/agentcom/storeops"
)

// startHubAt runs a real hub on dir whose store operations follow clock,
// with backups every interval and the schedule looking at the clock
// every few milliseconds.
func startHubAt(t *testing.T, dir string, clock *fakeClock, interval time.Duration) *Hub {
	t.Helper()
	store := testStore()
	store.BackupInterval = interval
	cfg := config.Hub{
		NATS: config.NATSListener{Listener: config.Listener{Listen: "127.0.0.1:0"}}, HTTP: config.HTTPListener{Listener: config.Listener{Listen: "127.0.0.1:0"}, OpenReads: true},
		DataDir: dir, Store: store, Log: config.Log{Level: "info"},
		Agents: config.AgentDefaults, Telemetry: config.TelemetryDefaults,
	}
	logs := &logtest.Buffer{}
	h := New(Params{Config: cfg, Log: logsink.New(logs, "test", logsink.LevelInfo), Now: clock.Now, BackupPoll: 5 * time.Millisecond})
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() {
		h.Stop()
		for _, line := range logs.Lines() {
			logtest.RequireLine(t, []byte(line))
		}
	})
	return h
}

func health(t *testing.T, h *Hub) storeops.StoreHealth {
	t.Helper()
	out, err := h.ops.StoreHealth(context.Background())
	require.NoError(t, err)
	return out
}

func backupsOn(t *testing.T, dir string) []broker.BackupFile {
	t.Helper()
	files, err := broker.ListBackups(storeops.BackupDir(dir))
	require.NoError(t, err)
	return files
}

// TestBackupScheduleSurvivesRestarts restarts a real hub before a backup
// interval passes, and after it passed while the hub was down: the next
// backup stays due one interval after the newest backup on disk (not one
// after the start), is taken when due, and store-health shows it, and
// warns when it is overdue.
func TestBackupScheduleSurvivesRestarts(t *testing.T) {
	t.Parallel()
	const interval = time.Hour
	dir := t.TempDir()
	t0 := time.Now().UTC()
	clock := &fakeClock{t: t0}

	// A fresh store: the first backup is due one interval after the event
	// stream was created.
	a := startHubAt(t, dir, clock, interval)
	got := health(t, a)
	require.Nil(t, got.LastBackup)
	require.WithinDuration(t, t0.Add(interval), got.NextBackup, time.Minute)
	require.False(t, got.BackupOverdue)

	// A backup asked for at t0+10m moves the schedule on.
	clock.Set(t0.Add(10 * time.Minute))
	first, err := a.ops.Backup(context.Background())
	require.NoError(t, err)
	require.Equal(t, first.CreatedAt.Add(interval), health(t, a).NextBackup)
	a.Stop()

	// Restarted at t0+40m: the schedule is read from the backup on disk,
	// not reset to the start plus an interval.
	clock.Set(t0.Add(40 * time.Minute))
	b := startHubAt(t, dir, clock, interval)
	got = health(t, b)
	require.NotNil(t, got.LastBackup)
	require.Equal(t, first.CreatedAt, got.LastBackup.At)
	require.Equal(t, first.CreatedAt.Add(interval), got.NextBackup, "due one interval after the backup")
	require.Equal(t, storeops.Healthy, got.Status, got.Reasons)
	require.Len(t, backupsOn(t, dir), 1, "nothing is due yet")

	// The due time passes: the running hub takes the backup.
	due := t0.Add(71 * time.Minute)
	clock.Set(due)
	require.Eventually(t, func() bool { return len(backupsOn(t, dir)) == 2 }, 30*time.Second, 5*time.Millisecond)
	second := backupsOn(t, dir)[0]
	require.Equal(t, due.Truncate(time.Millisecond), second.CreatedAt)
	require.Eventually(t, func() bool { return health(t, b).NextBackup.Equal(second.CreatedAt.Add(interval)) },
		30*time.Second, 5*time.Millisecond)
	b.Stop()

	// Down for three intervals, restarted where backups cannot be written
	// (the directory is a file): the overdue backup is tried at once,
	// fails, and store-health warns that it is overdue.
	late := due.Add(3 * interval)
	clock.Set(late)
	backups := storeops.BackupDir(dir)
	require.NoError(t, os.Rename(backups, backups+".away"))
	require.NoError(t, os.WriteFile(backups, []byte("in the way"), 0o600))
	c := startHubAt(t, dir, clock, interval)
	require.Eventually(t, func() bool {
		h := health(t, c)
		return h.LastBackup != nil && !h.LastBackup.OK
	}, 30*time.Second, 5*time.Millisecond)
	got = health(t, c)
	require.True(t, got.BackupOverdue)
	require.Equal(t, storeops.Warning, got.Status)
	require.True(t, containsReason(got.Reasons, "a backup is overdue"), got.Reasons)
	require.True(t, containsReason(got.Reasons, "the last backup failed"), got.Reasons)

	// With the directory back, the retry takes it and the warning goes.
	require.NoError(t, os.Remove(backups))
	require.NoError(t, os.Rename(backups+".away", backups))
	clock.Set(late.Add(storeops.BackupRetry))
	require.Eventually(t, func() bool {
		h := health(t, c)
		return h.LastBackup.OK && !h.BackupOverdue && h.Status == storeops.Healthy
	}, 30*time.Second, 5*time.Millisecond)
	require.Equal(t, late.Add(storeops.BackupRetry).Truncate(time.Millisecond), backupsOn(t, dir)[0].CreatedAt)
	require.Equal(t, late.Add(storeops.BackupRetry).Truncate(time.Millisecond).Add(interval), health(t, c).NextBackup)
}

func containsReason(reasons []string, part string) bool {
	for _, r := range reasons {
		if strings.Contains(r, part) {
			return true
		}
	}
	return false
}
