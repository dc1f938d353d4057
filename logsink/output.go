package logsink

import (
	"io"
	"strings"
	"sync"
)

// Output is where a process's log lines go: always to its base writers
// (stdout, a file), and to one more writer attached later, such as a
// Publisher once the NATS connection exists.
type Output struct {
	base io.Writer
	mu   sync.RWMutex
	more io.Writer
}

// NewOutput writes to every base writer.
func NewOutput(base ...io.Writer) *Output { return &Output{base: io.MultiWriter(base...)} }

// Attach adds w (replacing any writer attached before); nil detaches.
func (o *Output) Attach(w io.Writer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.more = w
}

// Write writes the line to the base writers, then to the attached one.
func (o *Output) Write(p []byte) (int, error) {
	n, err := o.base.Write(p)
	o.mu.RLock()
	more := o.more
	o.mu.RUnlock()
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
