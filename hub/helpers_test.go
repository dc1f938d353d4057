package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
)

// clientFlags are the CLI's client flags pointing at h.
func clientFlags(t testing.TB, h *Hub, dataDir string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("client", pflag.ContinueOnError)
	config.ClientFlags(fs)
	require.NoError(t, fs.Parse([]string{"--hub", h.NATSURL(), "--data-dir", dataDir}))
	return fs
}

// fakeClock is a clock that moves only when the test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
