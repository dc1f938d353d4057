package domain

import "strings"

// TypeStoreLossAccepted is the event an operator's `agentcom store
// accept-loss` stores: the hub had detected events missing from its store
// and the operator accepted their loss. Part of the stored format.
const TypeStoreLossAccepted = "store.loss_accepted"

// StoreLossAccepted records an accepted loss: what was missing, and the
// stream's last sequence when it was accepted (loss at or before it is
// known and accepted).
type StoreLossAccepted struct {
	Missing string `json:"missing"`
	Through uint64 `json:"through"`
	By      string `json:"by,omitempty"`
}

// EventType implements Event.
func (StoreLossAccepted) EventType() string { return TypeStoreLossAccepted }

// SchemaVersion implements Event.
func (StoreLossAccepted) SchemaVersion() int { return 1 }

// IsStore tells whether the event is about the store itself, neither a
// task's nor an agent's: projections only note its sequence.
func (e Envelope) IsStore() bool { return strings.HasPrefix(e.Type, "store.") }

// TypeStoreEventQuarantined is the event an operator's `agentcom store
// quarantine SEQ` stores: the event at Seq cannot be read by this build
// (an unknown type, a newer schema version, not JSON), and every reader
// skips it from now on. Part of the stored format.
const TypeStoreEventQuarantined = "store.event_quarantined"

// StoreEventQuarantined records a quarantined event: its sequence and
// subject, why it could not be read, and who decided.
type StoreEventQuarantined struct {
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	By      string `json:"by,omitempty"`
}

// EventType implements Event.
func (StoreEventQuarantined) EventType() string { return TypeStoreEventQuarantined }

// SchemaVersion implements Event.
func (StoreEventQuarantined) SchemaVersion() int { return 1 }

// TypeConfigChanged is the event a run-time change of a setting stores
// (PUT or DELETE /api/config/{key}). Part of the stored format.
const TypeConfigChanged = "config.changed"

// ConfigChanged records one setting's new value, in the text form the
// configuration file takes ("45s", "2.5", a URL). Reset means the
// setting went back to the configuration file's value: the hub reads the
// file's value again at each start, not the Value recorded here.
type ConfigChanged struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	From  string `json:"from"`
	Reset bool   `json:"reset,omitempty"`
	By    string `json:"by,omitempty"`
}

// EventType implements Event.
func (ConfigChanged) EventType() string { return TypeConfigChanged }

// SchemaVersion implements Event.
func (ConfigChanged) SchemaVersion() int { return 1 }

// IsConfig tells whether the event is a run-time setting's change,
// neither a task's nor an agent's: projections only note its sequence.
func (e Envelope) IsConfig() bool { return strings.HasPrefix(e.Type, "config.") }
