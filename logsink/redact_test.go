package logsink_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink"
)

// canaries must never reach any output.
var canaries = []string{"CANARY-1", "CANARY-2", "CANARY-3", "CANARY-4", "CANARY-5", "CANARY-6",
	"ac_0123456789abcdefghijABCDEFGHIJ0123456789abc"}

func TestSecretsAreRedactedAtEveryLevelAndDepth(t *testing.T) {
	t.Parallel()
	metadata := []byte(`{"repo":"x","auth":{"api_token":"CANARY-1","list":[{"password":"CANARY-2"},{"ok":1}]},"Cookie":"CANARY-3"}`)
	for _, name := range logsink.LevelNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := logsink.New(&buf, "n", logsink.LevelDebug).Module("canary")
			lvl, _ := logsink.ParseLevel(name)
			for _, ev := range []func(){
				func() { at(log, lvl).RawJSON("metadata", metadata).Msg("task submitted") },
				func() { at(log, lvl).Str("metadata_text", string(metadata)).Msg("task submitted") },
				func() { at(log, lvl).Str("token", "CANARY-4").Str("client_secret", "CANARY-5").Msg("connect") },
				func() {
					at(log, lvl).Str("url", "http://hub/api?token=CANARY-6&x=1").
						Err(errors.New("bad credentials ac_0123456789abcdefghijABCDEFGHIJ0123456789abc")).Msg("call failed")
				},
				func() { at(log, lvl).Str("header", "Bearer CANARY-6").Msg("request") },
			} {
				ev()
			}
			out := buf.String()
			for _, c := range canaries {
				require.NotContains(t, out, c)
			}
			lines := parseLines(t, &buf)
			require.Len(t, lines, 5)
			require.Equal(t, logsink.Redacted, lines[2]["token"])
			meta := lines[0]["metadata"].(map[string]any)
			require.Equal(t, "x", meta["repo"], "what is not secret stays")
			require.Equal(t, logsink.Redacted, meta["auth"].(map[string]any)["api_token"])
			var asText map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[1]["metadata_text"].(string)), &asText))
			require.Equal(t, logsink.Redacted, asText["Cookie"])
			require.Contains(t, lines[3]["url"], "token="+logsink.Redacted)
		})
	}
}

// at starts a line at a level through the logger's own methods.
func at(l logsink.Logger, lvl logsink.Level) *zerolog.Event {
	switch lvl {
	case logsink.LevelDebug:
		return l.Debug()
	case logsink.LevelInfo:
		return l.Info()
	case logsink.LevelNotice:
		return l.Notice()
	case logsink.LevelWarning:
		return l.Warning()
	}
	return l.Error()
}

func TestScrubTextMasksSecretsInFreeText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"export API_KEY=abc123 next":              "export API_KEY=[REDACTED] next",
		"password: hunter2":                       "password: [REDACTED]",
		"dial nats://bob:s3cret@host:4222 failed": "dial nats://bob:[REDACTED]@host:4222 failed",
		"Authorization: Bearer abc.def":           "Authorization: Bearer [REDACTED]",
		"SECRET_ACCESS_KEY=xyz":                   "SECRET_ACCESS_KEY=[REDACTED]",
		"nothing to hide here":                    "nothing to hide here",
		"set cookie=abc; path=/":                  "set cookie=[REDACTED]; path=/",
		"private_key: zzz":                        "private_key: [REDACTED]",
	} {
		require.Equal(t, want, logsink.ScrubText(in), in)
	}
}
