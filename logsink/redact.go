package logsink

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Redacted replaces every secret value.
const Redacted = "[REDACTED]"

// sensitive are the key fragments whose values are never written: any key
// containing one of them (case-insensitive), at any depth.
var sensitive = []string{"token", "secret", "password", "passwd", "authorization", "cookie", "api_key", "apikey",
	"access_key", "private_key", "credential"}

// secretInText finds secrets inside strings: AgentCom tokens, bearer
// credentials, key=value pairs whose key holds a sensitive fragment (the
// same list as for fields), and passwords in URLs.
var secretInText = regexp.MustCompile(`ac_[A-Za-z0-9_-]{20,}` +
	`|(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+` +
	`|(?i)([a-z_]*(?:` + alternation(sensitive) + `)[a-z_]*\s*[=:]\s*(?:bearer\s+)?)[^&\s",;]+` +
	`|(?i)(://[^/\s:@]+:)[^/\s@]+(@)`)

func alternation(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(quoted, "|")
}

// redactWriter scrubs each line before passing it on. A line with no
// sensitive key and no secret-looking text passes untouched (the cheap,
// common case); otherwise it is decoded, scrubbed at any depth and encoded
// again.
type redactWriter struct{ w io.Writer }

var lowerPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (r redactWriter) Write(p []byte) (int, error) {
	if needsRedaction(p) {
		if line, ok := redactLine(p); ok {
			_, err := r.w.Write(line)
			return len(p), err
		}
	}
	_, err := r.w.Write(p)
	return len(p), err
}

func needsRedaction(p []byte) bool {
	bp := lowerPool.Get().(*[]byte)
	defer lowerPool.Put(bp)
	low := append((*bp)[:0], p...)
	for i, c := range low {
		if 'A' <= c && c <= 'Z' {
			low[i] = c + 'a' - 'A'
		}
	}
	*bp = low
	if bytes.Contains(low, []byte("ac_")) || bytes.Contains(low, []byte("bearer")) {
		return true
	}
	for _, s := range sensitive {
		if bytes.Contains(low, []byte(s)) {
			return true
		}
	}
	return false
}

// redactLine scrubs one JSON line; ok is false if it is not JSON.
func redactLine(p []byte) ([]byte, bool) {
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return []byte(ScrubText(string(p))), true
	}
	b, err := json.Marshal(Scrub(v))
	if err != nil {
		return nil, false
	}
	return append(b, '\n'), true
}

// Scrub returns v with every value under a sensitive key replaced, at any
// depth of objects and arrays, and secrets inside strings masked.
func Scrub(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if isSensitive(k) {
				out[k] = Redacted
			} else {
				out[k] = Scrub(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = Scrub(val)
		}
		return out
	case string:
		return scrubString(x)
	}
	return v
}

// scrubString masks secrets in a string; a string that holds JSON (an
// object or array logged as text) is scrubbed as JSON.
func scrubString(s string) string {
	if t := strings.TrimSpace(s); len(t) > 1 && (t[0] == '{' || t[0] == '[') {
		d := json.NewDecoder(strings.NewReader(t))
		d.UseNumber()
		var v any
		if d.Decode(&v) == nil {
			if b, err := json.Marshal(Scrub(v)); err == nil {
				return string(b)
			}
		}
	}
	return ScrubText(s)
}

// ScrubText masks secrets inside free text: tokens, bearer credentials,
// key=value or key: value pairs whose key names a secret, and passwords in
// URLs. Use it on text that reaches people outside the logger (stderr,
// telemetry).
func ScrubText(s string) string {
	return secretInText.ReplaceAllString(s, "${1}${2}${3}"+Redacted+"${4}")
}

func isSensitive(key string) bool {
	k := strings.ToLower(key)
	for _, s := range sensitive {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
