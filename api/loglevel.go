package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
)

// SetLogLevel changes the log level at run time, for every module or for
// one ({"level": "debug", "module": "agents"}): only a module the code
// logs under (logsink.Modules), so the levels stay a short list. A restart
// returns to the configured levels. The change is logged at notice with who made it.
func (a *API) SetLogLevel(ctx context.Context, who string, body []byte) Reply {
	var req ops.LevelRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return a.levelError("body", "invalid_json", "the body must be a JSON object such as {\"level\": \"debug\"}")
	}
	level, ok := logsink.ParseLevel(req.Level)
	if !ok {
		return a.levelError("level", "invalid", fmt.Sprintf("unknown level %q: use one of %s", req.Level, strings.Join(logsink.LevelNames, ", ")))
	}
	if req.Module != "" && !logsink.KnownModule(req.Module) {
		return a.levelError("module", "unknown", fmt.Sprintf("unknown module %q: use one of %s (or none, for every module)",
			truncate(req.Module, 64), logsink.ModuleList()))
	}
	levels := a.log.Levels()
	from := logsink.LevelName(levels.Get(req.Module))
	levels.Set(req.Module, level)
	a.log.Ctx(ctx).Notice().Str("by", who).Str("target_module", cmp.Or(req.Module, "*")).
		Str("from", from).Str("to", req.Level).Msg("log level changed")
	a.tel.Emit("log.level_change", nil, map[string]any{"module": cmp.Or(req.Module, "*"), "from": from,
		"to": req.Level, "by": who, "request_id": logsink.RequestID(ctx)})
	return Reply{http.StatusOK, ops.LevelSet{Level: req.Level, Module: cmp.Or(req.Module, "*")}}
}

// LogLevels returns the levels in force.
func (a *API) LogLevels() Reply {
	global, modules := a.log.Levels().Snapshot()
	return Reply{http.StatusOK, ops.LogLevels{Level: global, Modules: modules, ValidLevels: logsink.LevelNames,
		ValidModules: logsink.Modules}}
}

func (a *API) levelError(field, code, detail string) Reply {
	return Reply{http.StatusUnprocessableEntity, ErrorBody{
		Error:        "validation_failed",
		Errors:       []domain.FieldError{{Field: field, Error: code, Detail: detail}},
		ValidLevels:  logsink.LevelNames,
		ValidModules: logsink.Modules,
	}}
}

// truncate cuts s to at most n bytes, for echoing a caller's input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
