// Package brokertest starts real embedded NATS servers for tests: random
// port, temporary store, stopped when the test ends. There is no mock.
package brokertest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
)

// Bundle is a running server with the hub's own connection to it.
type Bundle struct {
	Server  *broker.Server
	Auth    *broker.Authenticator
	Conn    *nats.Conn
	DataDir string
}

// Start runs an embedded server in t.TempDir(), listening on a random
// loopback port, with fsync "always" unless syncInterval is set.
func Start(tb testing.TB, syncInterval time.Duration) *Bundle {
	tb.Helper()
	dir := tb.TempDir()
	auth := broker.NewAuthenticator()
	auth.MarkReady() // tests set tokens by hand
	srv, err := broker.StartServer(broker.ServerConfig{
		Listen: "127.0.0.1:0", DataDir: dir, SyncInterval: syncInterval, Auth: auth, Log: logsink.Nop(),
	})
	require.NoError(tb, err)
	tb.Cleanup(srv.Shutdown)
	nc, err := srv.ConnectInProcess(auth.HubSecret(), "test")
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return &Bundle{Server: srv, Auth: auth, Conn: nc, DataDir: dir}
}

// Dial opens a TCP client connection with a token.
func (b *Bundle) Dial(tb testing.TB, token string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(b.Server.ClientURL(), nats.Token(token))
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}
