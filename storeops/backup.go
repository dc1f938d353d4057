package storeops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/telemetry"
)

// BackedUpStreams are what a backup holds: the events (the source of
// truth) and the token hashes. Logs and telemetry are not backed up.
var BackedUpStreams = []string{broker.EventsStream, broker.TokensStream}

// BackupDir is where backups go: <data-dir>/backups.
func BackupDir(dataDir string) string { return filepath.Join(dataDir, "backups") }

// Backup writes a consistent backup of the streams and KV buckets to
// <data-dir>/backups while the hub runs, and keeps the newest
// store.backup_keep. It is a telemetry span (store.backup) and logs at
// notice, or error on failure. The schedule moves on from it (see
// backupPlan), whoever asked for it.
func (o *Ops) Backup(ctx context.Context) (broker.BackupFile, error) {
	var file broker.BackupFile
	at := o.now().UTC()
	err := o.tel.Span("store.backup", nil, func() (map[string]any, error) {
		var err error
		if file, err = broker.BackupAt(ctx, o.nc, BackupDir(o.cfg.DataDir), BackedUpStreams, at); err != nil {
			return nil, err
		}
		pruned, err := broker.PruneBackups(BackupDir(o.cfg.DataDir), o.cfg.Store.BackupKeep)
		if err != nil {
			return nil, err
		}
		return map[string]any{"file": file.Name, "bytes": file.Size, "pruned": len(pruned)}, nil
	})
	if err == nil {
		at = file.CreatedAt // the name's time, which a restart reads back
	}
	o.rec.recordAt(&o.rec.backup, at, err == nil, map[string]any{"file": file.Name, "bytes": file.Size})
	o.backupDone(at, err == nil)
	log := o.log.Module("store")
	if err != nil {
		log.Error().Err(err).Msg("backup failed")
		return file, err
	}
	log.Notice().Str("file", file.Name).Int64("bytes", file.Size).Msg("backup written")
	return file, nil
}

// RequestRestore asks the process running the hub to restore a backup:
// it stops the hub, restores (see Restore) and starts it again, so the
// projections are rebuilt from the restored events. name is a file in the
// backup directory.
func (o *Ops) RequestRestore(name string) (string, error) {
	path, err := backupPath(o.cfg.DataDir, name)
	if err != nil {
		return "", err
	}
	select {
	case o.restore <- path:
		return path, nil
	default:
		return "", errors.New("a restore is already under way")
	}
}

// Restarts delivers the backup files the hub was asked to restore.
func (o *Ops) Restarts() <-chan string { return o.restore }

// backupPath checks that name is a backup in the data directory's backups.
func backupPath(dataDir, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("restore: %q is not the name of a backup in %s", name, BackupDir(dataDir))
	}
	path := filepath.Join(BackupDir(dataDir), name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("restore: no backup %s: %w", name, err)
	}
	return path, nil
}

// Restore brings a stopped hub's store back to a backup: the streams are
// replaced by the backup's, and the projection snapshot is dropped so the
// next start rebuilds from the restored events. The data directory must
// not be in use (stop the hub first).
func Restore(ctx context.Context, dataDir, file string, log logsink.Logger) ([]string, error) {
	nc, closeAll, err := openOffline(dataDir, "agentcom-restore", log,
		fmt.Errorf("restore %s: a hub is running on it; stop it first (or use POST /api/admin/restore)", dataDir))
	if err != nil {
		return nil, err
	}
	defer closeAll()
	// The span goes to the TELEMETRY stream of the restored store's server
	// (no one listens live while the hub is down); the log line to stdout.
	tel := telemetry.New(nc, logsink.Hostname(), log)
	defer tel.Stop()
	var streams []string
	err = tel.Span("store.restore", map[string]any{"file": filepath.Base(file)}, func() (map[string]any, error) {
		var err error
		if streams, err = broker.Restore(ctx, nc, file); err != nil {
			return nil, err
		}
		_ = os.Remove(SnapshotPath(dataDir))
		_ = os.Remove(markPath(dataDir)) // the restored store starts a new history
		return map[string]any{"streams": streams}, nil
	})
	if err != nil {
		log.Module("store").Error().Err(err).Str("file", file).Msg("restore failed")
		return nil, err
	}
	log.Module("store").Notice().Str("file", file).Strs("streams", streams).Msg("backup restored")
	return streams, nil
}

// SnapshotPath is the projection snapshot file of a data directory.
func SnapshotPath(dataDir string) string { return filepath.Join(dataDir, snapshotDir, snapshotFile) }
