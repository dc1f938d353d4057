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

// Secrets inside text are found by their shape, so that messages that
// merely name a secret ("token: required") stay as they are:
//   - tokenShaped: AgentCom tokens ("ac_" and 43 base64url characters)
//     and JWTs, wherever they are;
//   - schemeCred: the credentials after "Bearer" or "Basic";
//   - urlPassword: the password in a URL (scheme://user:password@host);
//   - keyValue: the value of a pair whose key holds a sensitive fragment
//     (the same list as for fields). An assignment (key=value, or a JSON
//     pair "key":"value") is always a secret; after a colon (key: value,
//     how errors name what they are about) only a secret-shaped value is.
var (
	tokenShaped = regexp.MustCompile(`\bac_[A-Za-z0-9_-]{20,}` +
		`|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	schemeCred  = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]+)`)
	urlPassword = regexp.MustCompile(`(://[^/\s:@]+:)[^/\s@]+(@)`)
	keyValue    = regexp.MustCompile(`(?i)\b([a-z0-9_]*(?:` + alternation(sensitive) + `)[a-z0-9_]*)` +
		`("?\s*[=:]\s*"?)((?:bearer\s+|basic\s+)?)([^&\s",;]+)`)
)

func alternation(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(quoted, "|")
}

// secretShaped reports whether a word looks like a credential rather than
// a word of a message: long, or holding a digit, an inner capital or a
// symbol of base64 and URLs. "hunter2", "abc.def" and "MIIEvQ" are;
// "required", "missing" and "Invalid" are not.
func secretShaped(v string) bool {
	if len(v) >= 20 {
		return true
	}
	for i, c := range v {
		switch {
		case '0' <= c && c <= '9', i > 0 && 'A' <= c && c <= 'Z', strings.ContainsRune("._~+/=-", c):
			return true
		}
	}
	return false
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

// shapeHints are cheap signs (lower case) of a secret found by its shape.
var shapeHints = []string{"ac_", "eyj", "bearer", "basic", "://"}

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
	for _, s := range shapeHints {
		if bytes.Contains(low, []byte(s)) {
			return true
		}
	}
	for _, s := range sensitive {
		if bytes.Contains(low, []byte(s)) {
			return true
		}
	}
	return false
}

// redactLine scrubs one JSON line; ok is false if there was nothing to
// scrub, so the line is written as it came (not re-encoded).
func redactLine(p []byte) ([]byte, bool) {
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		text := ScrubText(string(p))
		return []byte(text), text != string(p)
	}
	var changed bool
	v = scrub(v, &changed)
	if !changed {
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	return append(b, '\n'), true
}

// Scrub returns v with every value under a sensitive key replaced, at any
// depth of objects and arrays, and secrets inside strings masked.
func Scrub(v any) any {
	var changed bool
	return scrub(v, &changed)
}

// scrub is Scrub; it sets *changed when it replaces anything.
func scrub(v any, changed *bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if isSensitive(k) {
				out[k] = Redacted
				*changed = true
			} else {
				out[k] = scrub(val, changed)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = scrub(val, changed)
		}
		return out
	case string:
		s := scrubString(x)
		*changed = *changed || s != x
		return s
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
			var changed bool
			v = scrub(v, &changed)
			if !changed {
				return s
			}
			if b, err := json.Marshal(v); err == nil {
				return string(b)
			}
		}
	}
	return ScrubText(s)
}

// ScrubText masks secrets inside free text: tokens and JWTs, bearer and
// basic credentials, passwords in URLs, and the values of secret-named
// keys (see keyValue). The rest of the text, and any message that only
// names a secret, is left as it is. Use it on text that reaches people
// outside the logger (stderr, telemetry, stored free text).
func ScrubText(s string) string {
	if s == "" || !needsRedaction([]byte(s)) {
		return s // nothing shaped like a secret, nor named one: the common case, without a regexp
	}
	s = tokenShaped.ReplaceAllString(s, Redacted)
	s = urlPassword.ReplaceAllString(s, "${1}"+Redacted+"${2}")
	s = keyValue.ReplaceAllStringFunc(s, func(m string) string {
		g := keyValue.FindStringSubmatch(m)
		sep, val := g[2], g[4]
		if val == Redacted || (!strings.ContainsAny(sep, `="`) && !secretShaped(val)) {
			return m
		}
		return g[1] + sep + g[3] + Redacted
	})
	return schemeCred.ReplaceAllStringFunc(s, func(m string) string {
		g := schemeCred.FindStringSubmatch(m)
		if g[3] == Redacted || !secretShaped(g[3]) {
			return m
		}
		return g[1] + g[2] + Redacted
	})
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
