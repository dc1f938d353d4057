package telemetry

import (
	"encoding/json"
	"strconv"
	"time"
)

// Writer writes events on the emitter's goroutine: Later hands one to the
// function it runs. Each field goes straight into the event's encoding,
// so a hot path builds no maps.
type Writer struct{ e *Emitter }

// Event starts an event that happened at a given time; Send emits it.
// One event at a time: the next Event reuses the same Fields.
func (w Writer) Event(at time.Time, name string) *Fields {
	f := &w.e.fields
	f.at, f.name, f.meas, f.meta = at, name, f.meas[:0], f.meta[:0]
	return f
}

// Fields is an event being written: its measurements and its metadata.
type Fields struct {
	e    *Emitter
	at   time.Time
	name string
	// the members of the measurements and of the metadata objects, encoded
	meas, meta []byte
}

// Num adds a measurement.
func (f *Fields) Num(key string, v float64) *Fields {
	f.meas = appendFloat(appendKey(f.meas, key), v)
	return f
}

// Str adds a metadata string.
func (f *Fields) Str(key, v string) *Fields {
	f.meta = appendString(appendKey(f.meta, key), v)
	return f
}

// Int adds a metadata number.
func (f *Fields) Int(key string, v int64) *Fields {
	f.meta = strconv.AppendInt(appendKey(f.meta, key), v, 10)
	return f
}

// Strs adds a metadata list of strings.
func (f *Fields) Strs(key string, v []string) *Fields {
	f.meta = appendValue(appendKey(f.meta, key), v)
	return f
}

// Send publishes the event and hands it to the handlers that take it
// (decoded from its JSON, so metadata numbers are float64 there).
func (f *Fields) Send() {
	e := f.e
	e.send(f)
	if !e.watchedInProcess(f.name) {
		return
	}
	var ev Event
	if json.Unmarshal(e.buf, &ev) == nil { // as send encoded it
		e.dispatch(ev)
	}
}

// from writes an event given as maps.
func (f *Fields) from(ev Event) *Fields {
	f.at, f.name, f.meas, f.meta = ev.Time, ev.Event, f.meas[:0], f.meta[:0]
	for k, v := range ev.Measurements {
		f.Num(k, v)
	}
	for k, v := range ev.Metadata {
		f.meta = appendValue(appendKey(f.meta, k), v)
	}
	return f
}
