// Package logtest checks log output in tests: every line must be one JSON
// object that matches docs/log-line.schema.json.
package logtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

var (
	once   sync.Once
	schema *jsonschema.Schema
	err    error
)

// Schema returns the compiled log line schema from the repository's docs.
func Schema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	once.Do(func() { schema, err = compile() })
	require.NoError(tb, err)
	return schema
}

func compile() (*jsonschema.Schema, error) {
	path, err := schemaPath()
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	return c.Compile(path)
}

// schemaPath finds docs/log-line.schema.json above the working directory.
func schemaPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "docs", "log-line.schema.json")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// Check validates one line against the schema, for code that cannot stop
// the test (a reader goroutine).
func Check(line []byte) error {
	once.Do(func() { schema, err = compile() })
	if err != nil {
		return err
	}
	inst, uerr := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if uerr != nil {
		return uerr
	}
	return schema.Validate(inst)
}

// RequireLine checks one line against the schema and returns it decoded.
func RequireLine(tb testing.TB, line []byte) map[string]any {
	tb.Helper()
	var v any
	require.NoError(tb, json.Unmarshal(line, &v), "not JSON: %s", line)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	require.NoError(tb, err)
	require.NoError(tb, Schema(tb).Validate(inst), "log line does not match the schema: %s", line)
	return v.(map[string]any)
}

// RequireLines checks every line of a JSON-lines text and returns them.
func RequireLines(tb testing.TB, text []byte) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, RequireLine(tb, sc.Bytes()))
		}
	}
	require.NoError(tb, sc.Err())
	return out
}
