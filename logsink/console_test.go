package logsink

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConsoleLinesAndJSONFromOneLogger: one logger writes a readable line
// to the console writer and the same record as JSON to the other writer
// (a file, the LOGS stream), scrubbed in both.
func TestConsoleLinesAndJSONFromOneLogger(t *testing.T) {
	t.Parallel()
	var console, file bytes.Buffer
	log := New(NewOutput(Console(&console, false), &file), "node-1", LevelDebug).Module("hub")
	log.Notice().Str("http_url", "http://127.0.0.1:4000").Str("token", "ac_0123456789abcdefghijklmnop").Msg("hub ready")
	log.Warning().Msg("disk low")

	lines := bytes.Split(bytes.TrimSpace(console.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	require.Regexp(t, regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} NTC \[hub\] hub ready http_url=http://127\.0\.0\.1:4000 token=\[REDACTED\]$`), string(lines[0]))
	require.Regexp(t, regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} WRN \[hub\] disk low$`), string(lines[1]))
	require.NotContains(t, console.String(), "node-1", "pid, node and caller stay in the files")

	var rec map[string]any
	require.NoError(t, json.Unmarshal(bytes.SplitN(file.Bytes(), []byte("\n"), 2)[0], &rec))
	require.Equal(t, "notice", rec["severity"])
	require.Equal(t, "hub ready", rec["message"])
	require.Equal(t, Redacted, rec["token"])
	require.Equal(t, "node-1", rec["node"])
}

// TestConsoleWritesWhatItCannotFormat: a line that is not JSON is written
// as it is, and the writers after the console still get it.
func TestConsoleWritesWhatItCannotFormat(t *testing.T) {
	t.Parallel()
	var console, file bytes.Buffer
	out := NewOutput(Console(&console, false), &file)
	_, err := out.Write([]byte("not json\n"))
	require.NoError(t, err)
	require.Equal(t, "not json\n", console.String())
	require.Equal(t, "not json\n", file.String())
}

// TestStdoutFormat: json is the file itself, console always formats, and
// auto formats on a character device only (here /dev/null stands in for
// a terminal; a pipe is what stdout is under a supervisor or `| jq`).
func TestStdoutFormat(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()

	require.Equal(t, w, writerFor(FormatJSON, w))
	require.Equal(t, w, writerFor(FormatAuto, w))
	require.IsType(t, consoleWriter{}, writerFor(FormatConsole, w))
	require.IsType(t, consoleWriter{}, writerFor(FormatAuto, null))
	require.Equal(t, null, writerFor(FormatJSON, null))
}
