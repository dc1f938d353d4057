package hub

import (
	"context"
	"net/http"
)

// Compact runs a compaction now.
func (a *API) Compact(ctx context.Context) Reply {
	res, err := a.store.Compact(ctx)
	if err != nil {
		return Reply{http.StatusInternalServerError, ErrorBody{Error: "compaction_failed", Detail: err.Error()}}
	}
	return Reply{http.StatusOK, map[string]any{"status": "complete", "result": res}}
}

// StoreHealth reports the store: healthy, warning or unhealthy, and why.
func (a *API) StoreHealth(ctx context.Context) Reply {
	h, err := a.store.StoreHealth(ctx)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, h}
}
