package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// snapshotChunk is how many task records one line of a snapshot holds.
const snapshotChunk = 4096

// The framing of the tasks: the first line ends by opening the array of
// chunks, each following line is a chunk (a JSON array of records) and a
// comma but the last, and the final line closes the array and the
// document. json.Marshal never writes a raw newline, so lines split it.
var (
	tasksOpen  = []byte(`"tasks":[`)
	tasksClose = []byte(`]}`)
)

// encode writes the document: agents and holders on the first line, then
// the task chunks, encoded in parallel.
func (d *snapshotDoc) encode() ([]byte, error) {
	head, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	chunks, err := encodeChunks(d.Tasks)
	if err != nil {
		return nil, err
	}
	size := len(head) + len(tasksOpen) + len(tasksClose) + 1
	for _, c := range chunks {
		size += len(c) + 2
	}
	out := make([]byte, 0, size)
	out = append(append(append(out, head[:len(head)-1]...), ','), tasksOpen...)
	for i, c := range chunks {
		out = append(append(out, '\n'), c...)
		if i < len(chunks)-1 {
			out = append(out, ',')
		}
	}
	return append(append(out, '\n'), tasksClose...), nil
}

func encodeChunks(recs []taskRecord) ([][]byte, error) {
	chunks := make([][]byte, (len(recs)+snapshotChunk-1)/snapshotChunk)
	err := parallel(len(chunks), func(i int) error {
		b, err := json.Marshal(recs[i*snapshotChunk : min((i+1)*snapshotChunk, len(recs))])
		if err != nil {
			return fmt.Errorf("encode snapshot tasks: %w", err)
		}
		chunks[i] = b
		return nil
	})
	return chunks, err
}

// decodeSnapshot reads what encode wrote, decoding the task chunks in
// parallel.
func decodeSnapshot(b []byte) (*snapshotDoc, error) {
	lines := bytes.Split(b, []byte{'\n'})
	first, last := lines[0], lines[len(lines)-1]
	if len(lines) < 2 || !bytes.HasSuffix(first, append([]byte{','}, tasksOpen...)) || !bytes.Equal(last, tasksClose) {
		return nil, errors.New("decode snapshot: not a snapshot, or cut short")
	}
	var doc snapshotDoc
	head := append(first[:len(first)-len(tasksOpen)-1:len(first)-len(tasksOpen)-1], '}')
	if err := json.Unmarshal(head, &doc); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if doc.Format != snapshotFormat {
		return nil, fmt.Errorf("decode snapshot: format %d, want %d", doc.Format, snapshotFormat)
	}
	tasks, err := decodeChunks(lines[1 : len(lines)-1])
	if err != nil {
		return nil, err
	}
	doc.Tasks = tasks
	return &doc, nil
}

func decodeChunks(lines [][]byte) ([]taskRecord, error) {
	chunks := make([][]taskRecord, len(lines))
	err := parallel(len(lines), func(i int) error {
		line := lines[i]
		if i < len(lines)-1 {
			if !bytes.HasSuffix(line, []byte{','}) {
				return fmt.Errorf("decode snapshot: task chunk %d does not end with a comma", i)
			}
			line = line[:len(line)-1]
		}
		if err := json.Unmarshal(line, &chunks[i]); err != nil {
			return fmt.Errorf("decode snapshot: task chunk %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	out := make([]taskRecord, 0, n)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// parallel calls fn(0..n-1) on up to GOMAXPROCS goroutines and returns
// the errors it returned; after one error the rest are skipped.
func parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, min(runtime.GOMAXPROCS(0), n))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
