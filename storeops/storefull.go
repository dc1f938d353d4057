package storeops

import (
	"context"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/broker"
)

// storeWatchInterval is how often the hub looks at the data volume's free
// space and the server's store health: the longest a full store can go
// unseen (an append that meets it first is answered at once anyway).
const storeWatchInterval = 250 * time.Millisecond

// restartEvery spaces JetStream restarts while a write fault persists.
const restartEvery = 2 * time.Second

// storeWatch is the watcher's state, owned by its goroutine.
type storeWatch struct {
	fullSince   time.Time
	lastRestart time.Time
}

// watchStore marks the event store full when the volume's free space is
// below the reserve or the server met a write error, and writable again
// once both have passed: JetStream, which keeps refusing a stream after a
// write error, is restarted when there is room again.
func (o *Ops) watchStore() {
	var w storeWatch
	o.every(storeWatchInterval, func(ctx context.Context) { o.checkStore(ctx, &w) })
}

func (o *Ops) checkStore(ctx context.Context, w *storeWatch) {
	fault := o.storeFault(ctx, w)
	switch {
	case fault != nil && o.store.MarkFull(fault.Error()):
		w.fullSince = time.Now()
		o.log.Module("store").Error().Str("reason", fault.Error()).
			Msg("event store full: refusing writes (store_full) until space returns")
		o.tel.Emit("store.full", nil, map[string]any{"reason": fault.Error(), "state": "full"})
	case fault == nil && o.store.ClearFull():
		d := time.Since(w.fullSince)
		o.log.Module("store").Notice().Dur("duration_ms", d).Msg("event store writable again")
		o.tel.Emit("store.full", map[string]float64{"duration_ms": float64(d.Milliseconds())},
			map[string]any{"state": "writable"})
	}
}

// storeFault is why the store cannot take writes, or nil: too little free
// space, the server's storage limit reached, or a write fault that a
// JetStream restart does not clear.
func (o *Ops) storeFault(ctx context.Context, w *storeWatch) error {
	free, err := broker.FreeBytes(o.cfg.DataDir)
	if err != nil {
		return err
	}
	if free < o.plan.Reserve {
		return fmt.Errorf("%s free on the data volume, below the %s reserve (store.reserve_mb)",
			mibString(free), mibString(o.plan.Reserve))
	}
	if info, err := o.js.AccountInfo(ctx); err == nil && info.Store >= uint64(o.plan.MaxStore) {
		return fmt.Errorf("the store holds %s, its maximum (store.max_mb, or the volume)", mibString(int64(info.Store)))
	}
	fault := o.srv.StoreFault()
	if fault == nil || time.Since(w.lastRestart) < restartEvery {
		return fault
	}
	w.lastRestart = time.Now()
	o.log.Module("store").Warning().Str("reason", fault.Error()).Msg("restarting jetstream to clear a write fault")
	if err := o.srv.RestartJetStream(); err != nil {
		return fmt.Errorf("%v; %w", fault, err)
	}
	return o.srv.StoreFault()
}
