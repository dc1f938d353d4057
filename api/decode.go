package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// DecodeSubmit reads a submit body as the API does (a schedule's task
// template is one).
func DecodeSubmit(body []byte, now time.Time) (domain.SubmitTask, error) {
	return decodeSubmit(body, now)
}

// decodeSubmit reads a submit body strictly: each known field must have
// its JSON type (no coercion); unknown fields are ignored. Every problem,
// type or value, is reported with its field name.
func decodeSubmit(body []byte, now time.Time) (domain.SubmitTask, error) {
	v := &domain.ValidationError{}
	raw, ok := decodeObject(body, v)
	if !ok {
		return domain.SubmitTask{}, v
	}
	cmd := domain.SubmitTask{Priority: domain.PriorityNormal}
	if !has(raw, "description") {
		v.Add("description", "required", "description is required")
	}
	decodeString(raw, "description", v, &cmd.Description)
	var prio string
	if decodeString(raw, "priority", v, &prio) {
		p, ok := domain.ParsePriority(prio)
		if !ok {
			v.Add("priority", "invalid", fmt.Sprintf("unknown priority %q: use urgent, high, normal or low", prio))
		}
		cmd.Priority = p
	}
	cmd.Metadata = decodeMetadata(raw, v)
	cmd.NeededCapabilities = decodeStrings(raw, "needed_capabilities", v)
	cmd.MaxRetries = decodeInt(raw, "max_retries", v)
	cmd.CompleteBy = decodeTime(raw, "complete_by", v)
	cmd.RunAt = decodeTime(raw, "run_at", v)
	cmd.RetryBase = decodeDuration(raw, "retry_base", v)
	cmd.RetryMax = decodeDuration(raw, "retry_max", v)
	decodeWorkflow(raw, v, &cmd.Flow)
	mergeValidation(v, cmd, now)
	if err := v.Err(); err != nil {
		return domain.SubmitTask{}, err
	}
	return cmd, nil
}

// decodeWorkflow reads the fields that tie a task to others.
func decodeWorkflow(raw map[string]json.RawMessage, v *domain.ValidationError, w *domain.Workflow) {
	w.DependsOn = decodeStrings(raw, "depends_on", v)
	decodeString(raw, "on_dependency_failure", v, &w.OnDependencyFailure)
	decodeString(raw, "goal_id", v, &w.GoalID)
	decodeString(raw, "idempotency_key", v, &w.IdempotencyKey)
}

// mergeValidation adds the domain's own checks for fields that decoded.
func mergeValidation(v *domain.ValidationError, cmd domain.SubmitTask, now time.Time) {
	err := cmd.Validate(now)
	ve, ok := err.(*domain.ValidationError)
	if !ok {
		return
	}
	for _, f := range ve.Fields {
		if !hasField(v, f.Field) {
			v.Fields = append(v.Fields, f)
		}
	}
}

func hasField(v *domain.ValidationError, field string) bool {
	for _, f := range v.Fields {
		if f.Field == field || strings.HasPrefix(f.Field, field+"[") || strings.HasPrefix(field, f.Field+"[") {
			return true
		}
	}
	return false
}

// decodeObject parses body as a JSON object of raw fields.
func decodeObject(body []byte, v *domain.ValidationError) (map[string]json.RawMessage, bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		v.Add("body", "invalid_json", "the body must be a JSON object: "+protocol.JSONProblem(err))
		return nil, false
	}
	if raw == nil {
		v.Add("body", "invalid_json", "the body must be a JSON object, not null")
		return nil, false
	}
	return raw, true
}

// has reports whether a field is present and not null (null counts as
// missing, as in the original).
func has(raw map[string]json.RawMessage, field string) bool {
	b, ok := raw[field]
	return ok && !bytes.Equal(bytes.TrimSpace(b), []byte("null"))
}

func decodeString(raw map[string]json.RawMessage, field string, v *domain.ValidationError, dst *string) bool {
	if !has(raw, field) {
		return false
	}
	if !unquote(raw[field], dst) {
		v.Add(field, "wrong_type", field+" must be a string")
		return false
	}
	if problem := textProblem(raw[field], *dst); problem != "" {
		v.Add(field, "invalid", field+" must be "+problem)
		return false
	}
	return true
}

// unquote decodes a JSON string value into dst, reporting whether it
// was one. raw comes from a parsed document, so a string without escapes
// is its bytes between the quotes; only one with escapes needs the
// decoder.
func unquote(raw json.RawMessage, dst *string) bool {
	b := bytes.TrimSpace(raw)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		*dst = string(b[1 : len(b)-1])
		return true
	}
	return json.Unmarshal(b, dst) == nil
}

// textProblem says what is wrong with a decoded JSON string, or "". The
// decoder turns invalid UTF-8 into U+FFFD, so the raw bytes are checked.
func textProblem(rawJSON []byte, s string) string {
	switch {
	case !utf8.Valid(rawJSON):
		return "valid UTF-8"
	case strings.ContainsRune(s, 0):
		return "free of NUL (U+0000)"
	}
	return ""
}

// decodeDuration reads a Go duration string such as "5s" or "1m30s".
func decodeDuration(raw map[string]json.RawMessage, field string, v *domain.ValidationError) *time.Duration {
	var s string
	if !decodeString(raw, field, v, &s) {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.Add(field, "wrong_type", field+` must be a duration such as "5s" or "1m"`)
		return nil
	}
	return &d
}

func decodeMetadata(raw map[string]json.RawMessage, v *domain.ValidationError) json.RawMessage {
	if !has(raw, "metadata") {
		return nil
	}
	b := bytes.TrimSpace(raw["metadata"])
	if len(b) == 0 || b[0] != '{' {
		v.Add("metadata", "wrong_type", "metadata must be a JSON object")
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		v.Add("metadata", "wrong_type", "metadata must be a JSON object")
		return nil
	}
	return buf.Bytes()
}

func decodeStrings(raw map[string]json.RawMessage, field string, v *domain.ValidationError) []string {
	if !has(raw, field) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw[field], &items); err != nil {
		v.Add(field, "wrong_type", field+" must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		// A bad item keeps its place (as ""), so later items keep their index.
		var s string
		name := func() string { return fmt.Sprintf("%s[%d]", field, i) }
		if bytes.Equal(bytes.TrimSpace(item), []byte("null")) || !unquote(item, &s) {
			v.Add(name(), "wrong_type", "each item must be a string")
		} else if problem := textProblem(item, s); problem != "" {
			v.Add(name(), "invalid", "each item must be "+problem)
		}
		out = append(out, s)
	}
	return out
}

func decodeInt(raw map[string]json.RawMessage, field string, v *domain.ValidationError) *int {
	if !has(raw, field) {
		return nil
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(raw[field])))
	if err != nil {
		v.Add(field, "wrong_type", field+" must be an integer")
		return nil
	}
	return &n
}

// decodeTime accepts epoch milliseconds (the original's form) or an
// RFC 3339 string.
func decodeTime(raw map[string]json.RawMessage, field string, v *domain.ValidationError) *time.Time {
	if !has(raw, field) {
		return nil
	}
	b := bytes.TrimSpace(raw[field])
	if ms, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		t := time.UnixMilli(ms).UTC()
		return &t
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	v.Add(field, "wrong_type", field+" must be epoch milliseconds or an RFC 3339 time")
	return nil
}
