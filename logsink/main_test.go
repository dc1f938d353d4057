package logsink_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// lumberjack starts one compressing goroutine per Logger on its
		// first rotation and gives no way to end it: Close closes the
		// file only, and millCh is never closed. It idles on that channel
		// for the life of the process; nothing of ours can stop it.
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}
