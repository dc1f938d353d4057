package storeops

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
)

func sizingConfig() config.Hub {
	return config.Hub{DataDir: "/data", Store: config.Store{ReserveMB: 4}, Telemetry: config.Telemetry{Enabled: true}}
}

func TestSizeStoreFitsTheVolume(t *testing.T) {
	p, err := sizeStore(sizingConfig(), 64*mib)
	require.NoError(t, err)
	require.Equal(t, 8*mib, p.Logs, "an eighth of 64 MiB")
	require.Equal(t, 8*mib, p.Telemetry)
	require.Equal(t, 60*mib, p.MaxStore, "the volume less the reserve")

	big, err := sizeStore(sizingConfig(), 1<<40)
	require.NoError(t, err)
	require.Equal(t, config.AutoLogStreamMB*mib, big.Logs, "capped on a large volume")
	require.Equal(t, config.AutoTelemetryMB*mib, big.Telemetry)
}

func TestSizeStoreTakesSettings(t *testing.T) {
	cfg := sizingConfig()
	cfg.Log.StreamMaxMB, cfg.Telemetry.MaxMB, cfg.Store.MaxMB = 2, 3, 40
	p, err := sizeStore(cfg, 64*mib)
	require.NoError(t, err)
	require.Equal(t, []int64{2 * mib, 3 * mib, 40 * mib}, []int64{p.Logs, p.Telemetry, p.MaxStore})
}

func TestSizeStoreRefusesATooSmallVolumeNamingTheNeed(t *testing.T) {
	_, err := sizeStore(sizingConfig(), 8*mib)
	require.ErrorIs(t, err, ErrVolumeTooSmall)
	require.ErrorContains(t, err, "needs at least 14.0 MiB")
	require.ErrorContains(t, err, "log.stream_max_mb")

	cfg := sizingConfig()
	cfg.Log.StreamMaxMB = 100
	_, err = sizeStore(cfg, 64*mib)
	require.ErrorContains(t, err, "LOGS stream 100.0 MiB")
}
