package hub

import (
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
)

// LogLevels builds the run-time levels from the configured ones. The
// config is validated, so every name parses.
func LogLevels(cfg config.Log) *logsink.Levels {
	global, _ := logsink.ParseLevel(cfg.Level)
	modules := map[string]logsink.Level{}
	for m, name := range cfg.Modules {
		modules[m], _ = logsink.ParseLevel(name)
	}
	return logsink.NewLevels(global, modules)
}
