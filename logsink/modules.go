package logsink

import (
	"slices"
	"strings"
)

// Modules are the components the code logs under (Logger.Module), sorted:
// the only names a per-module level may be set for. A test reads the
// code's Module calls and keeps this list equal to them.
var Modules = []string{"agents", "api", "command", "http", "hub", "main", "metrics", "nats", "sidecar", "store", "telemetry", "workflows"}

// KnownModule reports whether name is one of Modules.
func KnownModule(name string) bool {
	_, found := slices.BinarySearch(Modules, name)
	return found
}

// ModuleList is Modules joined for an error message.
func ModuleList() string { return strings.Join(Modules, ", ") }
