package brokertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
)

// StartIn runs an embedded server on an existing data directory (a store
// a test stopped, and maybe damaged, before), fsync "always".
func StartIn(tb testing.TB, dir string) *Bundle {
	tb.Helper()
	auth := broker.NewAuthenticator()
	auth.MarkReady()
	srv, err := broker.StartServer(broker.ServerConfig{
		Listen: "127.0.0.1:0", DataDir: dir, Auth: auth, Log: logsink.Nop(),
	})
	require.NoError(tb, err)
	tb.Cleanup(srv.Shutdown)
	nc, err := srv.ConnectInProcess(auth.HubSecret(), "test")
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return &Bundle{Server: srv, Auth: auth, Conn: nc, DataDir: dir}
}
