package api

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
	return Reply{http.StatusOK, ops.Compacted{Status: "complete", Result: res}}
}

// StoreHealth reports the store: healthy, warning or unhealthy, and why.
func (a *API) StoreHealth(ctx context.Context) Reply {
	h, err := a.store.StoreHealth(ctx)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, h}
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
