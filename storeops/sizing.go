package storeops

import (
	"errors"
	"fmt"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
)

// Sizes of the store's plan, in bytes.
const (
	mib = int64(1) << 20
	// minStreamBytes is the smallest automatic LOGS or TELEMETRY stream.
	minStreamBytes = 1 * mib
	// eventsRoom is the least room the hub wants for events beyond the
	// reservations and the reserve.
	eventsRoom = 8 * mib
	// autoFraction: an automatic stream gets 1/autoFraction of the space
	// the store may use.
	autoFraction = 8
)

// ErrVolumeTooSmall means the data directory's volume cannot hold the
// hub's streams.
var ErrVolumeTooSmall = errors.New("the data directory's volume is too small")

// Plan is how the store's space is shared: JetStream's maximum, the
// LOGS and TELEMETRY reservations and the free space kept in reserve, in
// bytes.
type Plan struct {
	usable    int64 // what the store holds plus the volume's free space
	MaxStore  int64
	Logs      int64
	Telemetry int64
	Reserve   int64
}

// PlanStore sizes the store to the data directory's volume. The space the
// store may use is what it holds now plus the free space: the same at
// every start, however full the store has grown, so automatic sizes do
// not shrink as events accumulate.
func PlanStore(cfg config.Hub) (Plan, error) {
	free, err := broker.FreeBytes(cfg.DataDir)
	if err != nil {
		return Plan{}, err
	}
	used, err := broker.StoreBytes(cfg.DataDir)
	if err != nil {
		return Plan{}, err
	}
	return sizeStore(cfg, free+used)
}

// sizeStore divides usable bytes by the settings, or refuses, naming what
// the hub needs.
func sizeStore(cfg config.Hub, usable int64) (Plan, error) {
	p := Plan{usable: usable, Reserve: cfg.Store.ReserveMB * mib}
	p.Logs = streamSize(cfg.Log.StreamMaxMB, config.AutoLogStreamMB, usable)
	if cfg.Telemetry.Enabled {
		p.Telemetry = streamSize(cfg.Telemetry.MaxMB, config.AutoTelemetryMB, usable)
	}
	need := p.Logs + p.Telemetry + eventsRoom + p.Reserve
	if usable < need {
		return p, fmt.Errorf("size store in %s: %w: the store may use %s (free space and what it holds), "+
			"the hub needs at least %s: LOGS stream %s (log.stream_max_mb) + TELEMETRY stream %s (telemetry.max_mb) "+
			"+ %s for events + %s reserve (store.reserve_mb)",
			cfg.DataDir, ErrVolumeTooSmall, mibString(usable), mibString(need), mibString(p.Logs),
			mibString(p.Telemetry), mibString(eventsRoom), mibString(p.Reserve))
	}
	p.MaxStore = usable - p.Reserve
	if cfg.Store.MaxMB > 0 {
		p.MaxStore = min(p.MaxStore, cfg.Store.MaxMB*mib)
	}
	if p.MaxStore < need-p.Reserve {
		return p, fmt.Errorf("size store in %s: store.max_mb %d is below the %s the streams need",
			cfg.DataDir, cfg.Store.MaxMB, mibString(need-p.Reserve))
	}
	return p, nil
}

// streamSize is a stream's bound: the setting in MiB, or when it is 0 the
// smaller of the automatic maximum and a fraction of usable, at least
// minStreamBytes.
func streamSize(settingMB, autoMaxMB, usable int64) int64 {
	if settingMB > 0 {
		return settingMB * mib
	}
	return max(minStreamBytes, min(autoMaxMB*mib, usable/autoFraction))
}

func mibString(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/float64(mib)) }
