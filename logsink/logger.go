package logsink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Level is one of the five log levels.
type Level = zerolog.Level

// The five levels, mapped onto zerolog's numeric levels so that zerolog's
// level filtering orders them correctly.
const (
	LevelDebug   Level = zerolog.DebugLevel
	LevelInfo    Level = zerolog.InfoLevel
	LevelNotice  Level = zerolog.WarnLevel
	LevelWarning Level = zerolog.ErrorLevel
	LevelError   Level = zerolog.FatalLevel
)

var levelNames = map[Level]string{
	LevelDebug: "debug", LevelInfo: "info", LevelNotice: "notice", LevelWarning: "warning", LevelError: "error",
}

// LevelNames lists the valid level names, lowest first.
var LevelNames = []string{"debug", "info", "notice", "warning", "error"}

// ParseLevel turns a level name into a Level.
func ParseLevel(s string) (Level, bool) {
	for l, name := range levelNames {
		if name == s {
			return l, true
		}
	}
	return 0, false
}

func init() {
	zerolog.TimestampFieldName = "time"
	zerolog.LevelFieldName = "severity"
	zerolog.MessageFieldName = "message"
	zerolog.ErrorFieldName = "error"
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	zerolog.LevelFieldMarshalFunc = func(l zerolog.Level) string {
		if name, ok := levelNames[l]; ok {
			return name
		}
		return "error"
	}
}

// Logger writes structured log lines. The zero value discards everything.
type Logger struct {
	root   zerolog.Logger // pid and node only: what Module starts from
	zl     zerolog.Logger
	levels *Levels
	level  *atomic.Int32 // this module's level in levels
}

// New returns a logger writing JSON lines to w at one minimum level.
func New(w io.Writer, node string, level Level) Logger {
	return NewWithLevels(w, node, NewLevels(level, nil))
}

// NewWithLevels returns a logger writing JSON lines to w, filtered by
// levels that may change at run time. Every line carries pid and node,
// and every line is scrubbed of secrets before it reaches w.
func NewWithLevels(w io.Writer, node string, levels *Levels) Logger {
	zl := zerolog.New(redactWriter{w: w}).Level(LevelDebug).Hook(callerHook{}).With().
		Timestamp().Int("pid", os.Getpid()).Str("node", node).Logger()
	return Logger{root: zl, zl: zl, levels: levels, level: levels.handle("")}
}

// Nop returns a logger that writes nothing.
func Nop() Logger {
	levels := NewLevels(LevelError+1, nil)
	return Logger{root: zerolog.Nop(), zl: zerolog.Nop(), levels: levels, level: levels.handle("")}
}

// Levels are the logger's levels, shared by every logger derived from it.
func (l Logger) Levels() *Levels { return l.levels }

// Module returns a logger for a component: its lines carry module=name and
// follow that module's level. It replaces any module set before and drops
// other With fields, so components set it once, first.
func (l Logger) Module(name string) Logger {
	if l.levels == nil {
		return l
	}
	return Logger{root: l.root, zl: l.root.With().Str("module", name).Logger(), levels: l.levels, level: l.levels.handle(name)}
}

// With returns a logger whose lines carry key=value.
func (l Logger) With(key, value string) Logger {
	l.zl = l.zl.With().Str(key, value).Logger()
	return l
}

// at starts a line at level, or returns nil (a no-op event) when the
// module's level is higher.
func (l Logger) at(level Level) *zerolog.Event {
	if l.level == nil || Level(l.level.Load()) > level {
		return nil
	}
	l.levels.count(level)
	return l.zl.WithLevel(level)
}

// Ctx returns a logger whose lines carry the request id in ctx, if any.
func (l Logger) Ctx(ctx context.Context) Logger {
	if id := RequestID(ctx); id != "" {
		return l.With("request_id", id)
	}
	return l
}

// Debug starts a debug line: internal state.
func (l Logger) Debug() *zerolog.Event { return l.at(LevelDebug) }

// Info starts an info line: life-cycle events.
func (l Logger) Info() *zerolog.Event { return l.at(LevelInfo) }

// Notice starts a notice line: operational completions.
func (l Logger) Notice() *zerolog.Event { return l.at(LevelNotice) }

// Warning starts a warning line: recoverable problems.
func (l Logger) Warning() *zerolog.Event { return l.at(LevelWarning) }

// Error starts an error line: failures needing attention.
func (l Logger) Error() *zerolog.Event { return l.at(LevelError) }

// callerHook adds the calling function and line to every line.
type callerHook struct{}

// callerSkip is the number of frames between Run and the code that called
// Msg: Run, zerolog's Event.msg, Event.Msg (or Msgf/Send).
const callerSkip = 4

func (callerHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	var pcs [1]uintptr
	if runtime.Callers(callerSkip, pcs[:]) == 0 {
		return
	}
	c := callerOf(pcs[0])
	e.Str("function", c.function).Int("line", c.line)
}

// caller is where a line was logged.
type caller struct {
	function string
	line     int
}

// callers caches each logging call site's caller by its program counter:
// resolving a frame costs more than the rest of the hook.
var callers sync.Map // uintptr -> caller

func callerOf(pc uintptr) caller {
	if c, ok := callers.Load(pc); ok {
		return c.(caller)
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	fn := frame.Function
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	c := caller{function: fn, line: frame.Line}
	callers.Store(pc, c)
	return c
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// Traced is ctx with a request id: its own, or a new one.
func Traced(ctx context.Context) context.Context {
	if RequestID(ctx) != "" {
		return ctx
	}
	return WithRequestID(ctx, NewRequestID())
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a fresh random request id ("req-" and 16 hex digits).
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

// RequestIDOr returns given when it is a sane request id (at most 64
// letters, digits, '_' and '-'), else a new one: for the X-Request-Id
// header and the NATS request-id header alike.
func RequestIDOr(given string) string {
	sane := given != "" && len(given) <= 64 && !strings.ContainsFunc(given, func(c rune) bool {
		return c != '-' && c != '_' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z')
	})
	if sane {
		return given
	}
	return NewRequestID()
}
