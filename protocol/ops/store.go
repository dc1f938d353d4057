package ops

import "time"

// StoreHealth answers store.health: healthy, warning or unhealthy, and why
// (storeops fills it in).
type StoreHealth struct {
	Status      string         `json:"status"`
	Reasons     []string       `json:"reasons"`
	Streams     []StreamHealth `json:"streams"`
	Tasks       int            `json:"tasks"`
	LossAtStart string         `json:"loss_at_start,omitempty"`
	LastBackup  *OpRecord      `json:"last_backup"`
	BackupAgeS  *float64       `json:"last_backup_age_s"`
	// NextBackup is when the next backup is due.
	NextBackup    time.Time `json:"next_backup_due"`
	BackupOverdue bool      `json:"backup_overdue"`
	LastCompact   *OpRecord `json:"last_compaction"`
	Snapshot      *OpRecord `json:"last_snapshot"`
}

// StreamHealth is one stream's state.
type StreamHealth struct {
	Name      string   `json:"name"`
	Messages  uint64   `json:"messages"`
	Bytes     uint64   `json:"bytes"`
	FirstSeq  uint64   `json:"first_seq"`
	LastSeq   uint64   `json:"last_seq"`
	LostMsgs  []uint64 `json:"lost_msgs,omitempty"`
	LostBytes uint64   `json:"lost_bytes,omitempty"`
}

// OpRecord is the last run of a store operation.
type OpRecord struct {
	At     time.Time      `json:"at"`
	OK     bool           `json:"ok"`
	Detail map[string]any `json:"detail,omitempty"`
}
