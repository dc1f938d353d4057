package logsink

import (
	"io"
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
