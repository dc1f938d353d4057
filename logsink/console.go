package logsink

import (
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
)

// The values of log.format.
const (
	FormatAuto    = "auto"    // console on a terminal, else JSON
	FormatJSON    = "json"    // one JSON object per line
	FormatConsole = "console" // one readable line per record
)

// Formats lists the valid values of log.format.
var Formats = []string{FormatAuto, FormatJSON, FormatConsole}

// Stdout is the writer for a process's stdout in a log format: os.Stdout
// itself for JSON, a console writer for console, and for auto the one
// that suits what stdout is (a terminal or not). Files and the LOGS
// stream take the JSON lines as they are, whatever the format.
func Stdout(format string) io.Writer { return writerFor(format, os.Stdout) }

// writerFor is the writer for f in a log format; colours only on a
// terminal.
func writerFor(format string, f *os.File) io.Writer {
	tty := isTerminal(f)
	if format == FormatConsole || (format == FormatAuto && tty) {
		return Console(f, tty)
	}
	return f
}

// isTerminal reports whether f is a character device (a terminal; also
// /dev/null, which reads nothing either way).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// consoleLevels are the level labels on console lines, and their colours.
var consoleLevels = map[string]struct {
	label string
	color int
}{
	"debug": {"DBG", 90}, "info": {"INF", 32}, "notice": {"NTC", 36}, "warning": {"WRN", 33}, "error": {"ERR", 31},
}

// Console writes each JSON line as one readable line to w: local time,
// level, module, message, then the other fields as key=value. The
// process's pid and node and the caller are left out (they are in the
// files). color adds ANSI colours.
func Console(w io.Writer, color bool) io.Writer {
	cw := zerolog.ConsoleWriter{
		Out: w, NoColor: !color, TimeFormat: "15:04:05.000",
		PartsOrder:    []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, "module", zerolog.MessageFieldName},
		FieldsExclude: []string{"pid", "node", "function", "line", "module"},
		FormatLevel:   func(v any) string { return consoleLevel(v, color) },
		FormatPartValueByName: func(v any, name string) string {
			if v == nil {
				return ""
			}
			return "[" + fmt.Sprint(v) + "]"
		},
	}
	return consoleWriter{cw: cw, raw: w}
}

func consoleLevel(v any, color bool) string {
	l, ok := consoleLevels[fmt.Sprint(v)]
	if !ok {
		return fmt.Sprint(v)
	}
	if !color {
		return l.label
	}
	return fmt.Sprintf("\x1b[%dm%s\x1b[0m", l.color, l.label)
}

// consoleWriter writes a line it cannot format as it is, and never fails
// for it: an error would stop the writers after it (the file).
type consoleWriter struct {
	cw  zerolog.ConsoleWriter
	raw io.Writer
}

func (c consoleWriter) Write(p []byte) (int, error) {
	if _, err := c.cw.Write(p); err != nil {
		_, _ = c.raw.Write(p)
	}
	return len(p), nil
}
