package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/agentcom/agentcom/logsink"
)

// maxCrashReport bounds how much of a crash report is logged.
const maxCrashReport = 16 << 10

// routeCrashes makes the runtime write a fatal panic's report to
// <dir>/crash.txt as well as stderr, and logs (at error, through the
// structured logger) a report left there by a previous run, so a crash
// ends up in the same logs as everything else.
func routeCrashes(dir string, log logsink.Logger) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	path := filepath.Join(dir, "crash.txt")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		if len(b) > maxCrashReport {
			b = b[len(b)-maxCrashReport:]
		}
		log.Error().Str("crash_report", string(b)).Str("path", path).Msg("the previous run crashed")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		log.Warning().Err(err).Msg("cannot record crashes")
		return
	}
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		log.Warning().Err(fmt.Errorf("set crash output: %w", err)).Msg("cannot record crashes")
	}
	f.Close() // SetCrashOutput keeps its own descriptor
}
