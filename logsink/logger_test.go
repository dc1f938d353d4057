package logsink_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
)

// parseLines checks every line against docs/log-line.schema.json.
func parseLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	return logtest.RequireLines(t, buf.Bytes())
}

func TestEveryLevelWritesTheCommonFields(t *testing.T) {
	t.Parallel()
	levels := map[string]func(logsink.Logger){
		"debug":   func(l logsink.Logger) { l.Debug().Msg("m") },
		"info":    func(l logsink.Logger) { l.Info().Msg("m") },
		"notice":  func(l logsink.Logger) { l.Notice().Msg("m") },
		"warning": func(l logsink.Logger) { l.Warning().Msg("m") },
		"error":   func(l logsink.Logger) { l.Error().Msg("m") },
	}
	for name, logAt := range levels {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := logsink.New(&buf, "node-1", logsink.LevelDebug).Module("test")
			ctx := logsink.WithRequestID(context.Background(), "req-1")
			logAt(log.Ctx(ctx).With("task_id", "task-1"))
			lines := parseLines(t, &buf)
			require.Len(t, lines, 1)
			l := lines[0]
			require.Equal(t, name, l["severity"])
			require.Equal(t, "m", l["message"])
			require.Equal(t, "test", l["module"])
			require.Equal(t, "node-1", l["node"])
			require.Equal(t, "req-1", l["request_id"])
			require.Equal(t, "task-1", l["task_id"])
			require.IsType(t, float64(0), l["pid"])
			require.IsType(t, float64(0), l["line"])
			require.Contains(t, l["function"], "logsink_test.TestEveryLevelWritesTheCommonFields")
			ts, err := time.Parse(time.RFC3339Nano, l["time"].(string))
			require.NoError(t, err)
			require.Equal(t, time.UTC, ts.Location())
		})
	}
}

func TestLevelFiltersLowerLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logsink.New(&buf, "n", logsink.LevelNotice).Module("test")
	log.Debug().Msg("no")
	log.Info().Msg("no")
	log.Notice().Msg("yes")
	log.Warning().Msg("yes")
	log.Error().Msg("yes")
	var got []string
	for _, l := range parseLines(t, &buf) {
		got = append(got, l["severity"].(string))
	}
	require.Equal(t, []string{"notice", "warning", "error"}, got)
}

func TestModuleReplacesModule(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logsink.New(&buf, "n", logsink.LevelInfo).Module("a").Module("b").Info().Msg("m")
	require.Equal(t, 1, strings.Count(buf.String(), `"module"`))
	require.Equal(t, "b", parseLines(t, &buf)[0]["module"])
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for i, name := range logsink.LevelNames {
		l, ok := logsink.ParseLevel(name)
		require.True(t, ok, name)
		require.Equal(t, i, int(l))
	}
	_, ok := logsink.ParseLevel("trace")
	require.False(t, ok)
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	a, b := logsink.NewRequestID(), logsink.NewRequestID()
	require.Regexp(t, `^req-[0-9a-f]{16}$`, a)
	require.NotEqual(t, a, b)
	require.Empty(t, logsink.RequestID(context.Background()))
}

func BenchmarkLog(b *testing.B) {
	log := logsink.New(io.Discard, "n", logsink.LevelInfo).Module("bench")
	b.Run("all-fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			log.Info().Str("task_id", "task-1").Str("agent_id", "a").Str("request_id", "req-1").Msg("event appended")
		}
	})
	b.Run("disabled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			log.Debug().Str("task_id", "task-1").Msg("event appended")
		}
	})
}
