package domain

import (
	"encoding/json"
	"strings"
	"time"
)

// Schedule is a periodic task: at each tick of its cron spec or interval
// the hub submits its task template once. Built from its events.
type Schedule struct {
	Name      string          `json:"name"`
	Cron      string          `json:"cron,omitempty"`
	Every     Duration        `json:"every,omitempty"`
	CatchUp   string          `json:"catch_up"`
	Task      json.RawMessage `json:"task"`
	CreatedBy string          `json:"created_by,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Deleted   bool            `json:"deleted,omitempty"`
	Seq       uint64          `json:"-"` // its subject's last sequence
}

// What a schedule does with a tick missed while the hub was down.
const (
	CatchUpOnce = "once" // run the latest missed tick, once
	CatchUpSkip = "skip" // wait for the next tick
)

// MaxScheduleName bounds a schedule's name (part of its ticks' task ids).
const MaxScheduleName = 64

// The schedule event type strings (stored: never rename one).
const (
	TypeScheduleCreated = "schedule.created"
	TypeScheduleDeleted = "schedule.deleted"
)

// ScheduleCreated adds (or, after a delete, re-adds) a schedule.
type ScheduleCreated struct {
	Cron    string          `json:"cron,omitempty"`
	Every   Duration        `json:"every,omitempty"`
	CatchUp string          `json:"catch_up"`
	Task    json.RawMessage `json:"task"`
	By      string          `json:"by,omitempty"`
}

// ScheduleDeleted ends a schedule: no more ticks.
type ScheduleDeleted struct {
	By string `json:"by,omitempty"`
}

// EventType implements Event.
func (ScheduleCreated) EventType() string { return TypeScheduleCreated }
func (ScheduleDeleted) EventType() string { return TypeScheduleDeleted }

// SchemaVersion implements Event.
func (ScheduleCreated) SchemaVersion() int { return 1 }
func (ScheduleDeleted) SchemaVersion() int { return 1 }

// IsSchedule tells whether the event belongs to a schedule.
func (e Envelope) IsSchedule() bool { return strings.HasPrefix(e.Type, "schedule.") }

// EvolveSchedule applies one schedule event (s is nil before the first).
func EvolveSchedule(s *Schedule, env Envelope) *Schedule {
	switch e := env.Data.(type) {
	case ScheduleCreated:
		return &Schedule{Name: env.Aggregate, Cron: e.Cron, Every: e.Every, CatchUp: e.CatchUp, Task: e.Task,
			CreatedBy: e.By, CreatedAt: env.Time, Seq: env.Seq}
	case ScheduleDeleted:
		if s == nil {
			return nil
		}
		n := *s
		n.Deleted, n.Seq = true, env.Seq
		return &n
	}
	return s
}

// TickTaskID is the id of the task a schedule's tick submits: derived
// from both, so no restart (or second hub) submits a tick twice.
func TickTaskID(name string, tick time.Time) string {
	return "sched-" + name + "-" + tick.UTC().Format("20060102T150405Z")
}
