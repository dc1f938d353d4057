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
		"export API_KEY=abc123 next":                                "export API_KEY=[REDACTED] next",
		"password: hunter2":                                         "password: [REDACTED]",
		"dial nats://bob:s3cret@host:4222 failed":                   "dial nats://bob:[REDACTED]@host:4222 failed",
		"Authorization: Bearer abc.def":                             "Authorization: Bearer [REDACTED]",
		"SECRET_ACCESS_KEY=xyz":                                     "SECRET_ACCESS_KEY=[REDACTED]",
		"nothing to hide here":                                      "nothing to hide here",
		"set cookie=abc; path=/":                                    "set cookie=[REDACTED]; path=/",
		"private_key: MIIEvQIBADANBg":                               "private_key: [REDACTED]",
		"login with basic dXNlcjpwYXNzd29yZA==":                     "login with basic [REDACTED]",
		`decode {"token":"abc"} failed`:                             `decode {"token":"[REDACTED]"} failed`,
		"run --token=abc":                                           "run --token=[REDACTED]",
		"jwt eyJhbGciOiJFZDI1NTE5.eyJqdGkiOiJBQkMi.c2ln":            "jwt [REDACTED]",
		"key ac_0123456789abcdefghijABCDEFGHIJ0123456789abc leaked": "key [REDACTED] leaked",
	} {
		require.Equal(t, want, logsink.ScrubText(in), in)
	}
}

// TestScrubTextKeepsMessagesThatNameASecret: a message about a token, a
// password or a credential, with no secret in it, is not touched.
func TestScrubTextKeepsMessagesThatNameASecret(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"invalid config: token: required (the agent's token; env AGENTCOM_TOKEN)",
		"token: invalid or revoked",
		"private_key: missing",
		"provide Authorization: Bearer <token>",
		"needs a bearer token",
		"admin token written",
		"hint: password: Required",
		"mac_address_of_this_host_is_very_long_indeed",
	} {
		require.Equal(t, in, logsink.ScrubText(in))
	}
}

// TestLinesWithoutSecretsAreNotRewritten: a line that only mentions a
// token reaches the writer byte for byte (not decoded and re-encoded,
// which would reorder its fields); a line with one is scrubbed.
func TestLinesWithoutSecretsAreNotRewritten(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logsink.New(&buf, "n", logsink.LevelDebug).Module("main")
	log.Error().Err(errors.New("invalid config: token: required")).Str("path", "/d/admin.token").Msg("token refused")
	log.Error().Err(errors.New("dial with token=ac_0123456789abcdefghijABCDEFGHIJ0123456789abc")).Msg("token refused")
	log.Info().Str("hub", "nats://bob:s3cret@host:4222").Msg("connecting")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 3)
	require.Contains(t, string(lines[2]), `"hub":"nats://bob:[REDACTED]@host:4222"`)
	require.True(t, bytes.HasPrefix(lines[0], []byte(`{"severity":"error","pid":`)), "re-encoded: %s", lines[0])
	require.Contains(t, string(lines[0]), `"error":"invalid config: token: required"`)
	require.Contains(t, string(lines[0]), `"path":"/d/admin.token"`)
	require.Contains(t, string(lines[1]), `"error":"dial with token=[REDACTED]"`)
	require.NotContains(t, string(lines[1]), "ac_0123")
}
