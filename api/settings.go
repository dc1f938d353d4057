package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/settings"
)

// settingsHandlers answer the run-time settings' operations.
func (a *API) settingsHandlers() map[string]handler {
	return map[string]handler{
		ops.OpConfigList.Name: func(context.Context, call) Reply { return Reply{http.StatusOK, a.settings.List()} },
		ops.OpConfigGet.Name: func(ctx context.Context, c call) Reply {
			return a.settingReply(ctx, func() (ops.Setting, error) { return a.settings.Get(c.params["key"]) })
		},
		ops.OpConfigSet.Name: func(ctx context.Context, c call) Reply {
			var req ops.SettingRequest
			if err := json.Unmarshal(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"value": "45s"}, the value a string`))
			}
			return a.settingReply(ctx, func() (ops.Setting, error) {
				return a.settings.Set(ctx, c.params["key"], req.Value, c.who)
			})
		},
		ops.OpConfigReset.Name: func(ctx context.Context, c call) Reply {
			return a.settingReply(ctx, func() (ops.Setting, error) { return a.settings.Reset(ctx, c.params["key"], c.who) })
		},
	}
}

// settingReply answers a setting, or why there is none: an unknown key is
// 404 with the keys there are, a refused value 422 naming the problem.
func (a *API) settingReply(ctx context.Context, do func() (ops.Setting, error)) Reply {
	s, err := do()
	switch {
	case errors.Is(err, settings.ErrUnknownKey):
		return Reply{http.StatusNotFound, ErrorBody{Error: "setting_not_found", Detail: err.Error()}}
	case errors.Is(err, settings.ErrInvalid):
		return a.errorReply(ctx, fieldErr("value", "invalid", strings.TrimPrefix(err.Error(), settings.ErrInvalid.Error()+": ")))
	case err != nil:
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, s}
}
