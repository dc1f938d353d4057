package broker

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink"
)

// TestBusyPortFailsAtOnce: an address in use is refused by the probe
// before the server starts, and, when taken after the probe (start is
// called directly here), by the server's own fatal error, without the
// 30 s wait for a server that will never be ready.
func TestBusyPortFailsAtOnce(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	addr := busy.Addr().String()
	cfg := ServerConfig{Listen: addr, DataDir: t.TempDir(), Auth: NewAuthenticator(), Log: logsink.Nop()}

	_, err = StartServer(cfg)
	require.ErrorContains(t, err, "listen nats on "+addr+" (nats.listen)")

	opts, err := serverOptions(cfg)
	require.NoError(t, err)
	begin := time.Now()
	_, err = start(cfg, opts)
	require.ErrorContains(t, err, "start nats server on "+addr+" (nats.listen)")
	require.ErrorContains(t, err, "address already in use")
	require.Less(t, time.Since(begin), 5*time.Second, "immediate by design; 5 s is room for a loaded machine")
}
