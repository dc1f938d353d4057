package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine of a run outlives it: every
// run stops its hub, raw server, workers and submitters.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}
