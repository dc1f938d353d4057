package hub

import (
	"testing"

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
