package logsink

import (
	"io"
	"strings"
	"sync"
)

// Output is where a process's log lines go: always to its base writers
// (stdout, a file), and to one more writer attached later, such as a
// Publisher once the NATS connection exists. Lines written before the
// first Attach are kept (up to maxEarly) and handed to that writer, so
// the start-up lines reach it too.
type Output struct {
	base     io.Writer
	mu       sync.Mutex
	more     io.Writer
	attached bool
	early    [][]byte
}

// maxEarly bounds the lines kept for the first attached writer.
const maxEarly = 4096

// NewOutput writes to every base writer.
func NewOutput(base ...io.Writer) *Output { return &Output{base: io.MultiWriter(base...)} }

// Attach adds w (replacing any writer attached before); nil detaches. The
// first Attach also receives the lines written before it.
func (o *Output) Attach(w io.Writer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.more = w
	if o.attached || w == nil {
		return
	}
	o.attached = true
	for _, line := range o.early {
		_, _ = w.Write(line)
	}
	o.early = nil
}

// Write writes the line to the base writers, then to the attached one
// (outside the lock: a publisher may block on its connection).
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	n, err := o.base.Write(p)
	more := o.more
	if more == nil && !o.attached && len(o.early) < maxEarly {
		o.early = append(o.early, append([]byte(nil), p...))
	}
	o.mu.Unlock()
	if more != nil {
		_, _ = more.Write(p)
	}
	return n, err
}

// LineWriter adapts a logger for libraries that log text lines (such as
// net/http's ErrorLog): each line becomes a warning with the text as a
// field, so stdout stays JSON.
func LineWriter(l Logger, message string) io.Writer { return lineWriter{l: l, msg: message} }

type lineWriter struct {
	l   Logger
	msg string
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.Warning().Str("detail", strings.TrimSpace(string(p))).Msg(w.msg)
	return len(p), nil
}
