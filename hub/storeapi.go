package hub

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/agentcom/agentcom/protocol/ops"
)

// Compact runs a compaction now.
func (a *API) Compact(ctx context.Context) Reply {
	res, err := a.store.Compact(ctx)
	if err != nil {
		return Reply{http.StatusInternalServerError, ErrorBody{Error: "compaction_failed", Detail: err.Error()}}
	}
	return Reply{http.StatusOK, ops.Compacted{Status: "complete", Result: ops.CompactResult(res)}}
}

// StoreHealth reports the store: healthy, warning or unhealthy, and why.
func (a *API) StoreHealth(ctx context.Context) Reply {
	h, err := a.store.StoreHealth(ctx)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, storeHealthBody(h)}
}

// storeHealthBody is h as the table declares it. The leaf types convert
// as they are (a compile error if their fields drift); a test compares
// the schemas of the two StoreHealth types.
func storeHealthBody(h StoreHealth) ops.StoreHealth {
	streams := make([]ops.StreamHealth, len(h.Streams))
	for i, s := range h.Streams {
		streams[i] = ops.StreamHealth(s)
	}
	if h.Streams == nil {
		streams = nil
	}
	return ops.StoreHealth{Status: h.Status, Reasons: h.Reasons, Streams: streams, Tasks: h.Tasks,
		LossAtStart: h.LossAtStart, LastBackup: (*ops.OpRecord)(h.LastBackup), BackupAgeS: h.BackupAgeS,
		NextBackup: h.NextBackup, BackupOverdue: h.BackupOverdue, LastCompact: (*ops.OpRecord)(h.LastCompact),
		Snapshot: (*ops.OpRecord)(h.Snapshot)}
}

// Backup takes a backup now.
func (a *API) Backup(ctx context.Context) Reply {
	f, err := a.store.Backup(ctx)
	if err != nil {
		return Reply{http.StatusInternalServerError, ErrorBody{Error: "backup_failed", Detail: err.Error()}}
	}
	return Reply{http.StatusOK, ops.BackedUp{Status: "complete", File: f.Name, Path: f.Path, Bytes: f.Size}}
}

// Restore restores a backup ({"file": "<name in the backups dir>"}): the
// hub answers 202, stops, restores and starts again with the projections
// rebuilt from the restored events.
func (a *API) Restore(ctx context.Context, body []byte) Reply {
	var req ops.RestoreRequest
	if err := json.Unmarshal(body, &req); err != nil || req.File == "" {
		return a.errorReply(ctx, fieldErr("file", "required", "file names a backup in <data-dir>/backups"))
	}
	path, err := a.store.RequestRestore(req.File)
	if err != nil {
		return Reply{http.StatusUnprocessableEntity, ErrorBody{Error: "restore_refused", Detail: err.Error()}}
	}
	a.log.Ctx(ctx).Notice().Str("file", path).Msg("restore requested; the hub restarts")
	return Reply{http.StatusAccepted, ops.Restoring{Status: "restoring", File: req.File}}
}
