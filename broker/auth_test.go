package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
)

func TestAdminTokenLifecycle(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	ctx := context.Background()
	tokens, err := broker.OpenTokens(ctx, b.Conn, b.Auth)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, broker.AdminTokenFile)

	created, err := tokens.EnsureAdmin(ctx, dir)
	require.NoError(t, err)
	require.True(t, created)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	first := readToken(t, path)
	require.True(t, strings.HasPrefix(first, "ac_"))
	id, ok := b.Auth.Lookup(first)
	require.True(t, ok)
	require.Equal(t, broker.RoleAdmin, id.Role)

	created, err = tokens.EnsureAdmin(ctx, dir)
	require.NoError(t, err)
	require.False(t, created, "an existing admin token is kept")
	require.Equal(t, first, readToken(t, path))

	// Deleting the file rotates the token: the old one stops working.
	require.NoError(t, os.Remove(path))
	created, err = tokens.EnsureAdmin(ctx, dir)
	require.NoError(t, err)
	require.True(t, created)
	second := readToken(t, path)
	require.NotEqual(t, first, second)
	_, ok = b.Auth.Lookup(first)
	require.False(t, ok)

	// Only the hash is stored: a fresh authenticator loads it from KV.
	fresh := broker.NewAuthenticator()
	_, err = broker.OpenTokens(ctx, b.Conn, fresh)
	require.NoError(t, err)
	_, ok = fresh.Lookup(second)
	require.True(t, ok)
}

func TestNATSConnectionsNeedAToken(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	for name, opts := range map[string][]nats.Option{
		"none":  nil,
		"wrong": {nats.Token(broker.NewToken())},
	} {
		_, err := nats.Connect(b.Server.ClientURL(), append(opts, nats.NoReconnect())...)
		require.Error(t, err, name)
		require.Contains(t, strings.ToLower(err.Error()), "authorization", name)
	}
	admin := broker.NewToken()
	b.Auth.Set(broker.HashToken(admin), broker.Identity{Name: "admin", Role: broker.RoleAdmin})
	nc := b.Dial(t, admin)
	require.True(t, nc.IsConnected())
}

func TestLockDataDirIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unlock, err := broker.LockDataDir(dir)
	require.NoError(t, err)
	_, err = broker.LockDataDir(dir)
	require.ErrorIs(t, err, broker.ErrLocked)
	unlock()
	unlock2, err := broker.LockDataDir(dir)
	require.NoError(t, err)
	unlock2()
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func TestAgentTokens(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	ctx := context.Background()
	tokens, err := broker.OpenTokens(ctx, b.Conn, b.Auth)
	require.NoError(t, err)
	list, err := tokens.List(ctx)
	require.NoError(t, err)
	require.Empty(t, list)

	first, rec, err := tokens.CreateAgent(ctx, "a1")
	require.NoError(t, err)
	require.Equal(t, first[:8], rec.Prefix)
	id, ok := b.Auth.Lookup(first)
	require.True(t, ok)
	require.Equal(t, broker.Identity{Name: "a1", Role: broker.RoleAgent, TokenID: broker.TokenID(first)}, id)
	second, _, err := tokens.CreateAgent(ctx, "a1")
	require.NoError(t, err)
	_, ok = b.Auth.Lookup(first)
	require.False(t, ok, "a new token replaces the old one")
	list, err = tokens.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "a1", list[0].Name)
	require.NotContains(t, list[0].Hash, second, "only hashes are kept")

	require.NoError(t, tokens.RevokeAgent(ctx, "a1"))
	_, ok = b.Auth.Lookup(second)
	require.False(t, ok)
	require.ErrorIs(t, tokens.RevokeAgent(ctx, "a1"), broker.ErrNoToken)
}
