package logsink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// tailWindow bounds how much of the file's end Tail reads.
const tailWindow = 1 << 20

// Tail returns the last n log lines of the file at path, oldest first:
// each a JSON object, as the sink wrote it. A missing file has none.
func Tail(path string, n int) ([]json.RawMessage, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return []json.RawMessage{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat log file: %w", err)
	}
	from := max(info.Size()-tailWindow, 0)
	buf := make([]byte, info.Size()-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read log file: %w", err)
	}
	lines := bytes.Split(buf, []byte("\n"))
	out := []json.RawMessage{}
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if line := bytes.TrimSpace(lines[i]); json.Valid(line) && len(line) > 0 && line[0] == '{' {
			out = append(out, json.RawMessage(line))
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
