package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/writer"
)

var (
	decodeNow    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	decodeFuture = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	decodePast   = time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)
)

func intPtr(n int) *int                      { return &n }
func timePtr(t time.Time) *time.Time         { return &t }
func ms(t time.Time) string                  { return fmt.Sprint(t.UnixMilli()) }
func jsonString(s string) string             { b, _ := json.Marshal(s); return string(b) }
func fieldCode(field, code string) [2]string { return [2]string{field, code} }

// fieldCodes returns the (field, code) pairs of a *domain.ValidationError,
// failing the test if err is anything else.
func fieldCodes(t *testing.T, err error) [][2]string {
	t.Helper()
	require.Error(t, err)
	var ve *domain.ValidationError
	require.True(t, errors.As(err, &ve), "want *domain.ValidationError, got %T: %v", err, err)
	require.ErrorIs(t, err, domain.ErrValidation)
	out := make([][2]string, len(ve.Fields))
	for i, f := range ve.Fields {
		require.NotEmpty(t, f.Detail, "field %s has no detail", f.Field)
		out[i] = fieldCode(f.Field, f.Error)
	}
	return out
}

func TestDecodeSubmitValid(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		body string
		want domain.SubmitTask
	}{
		{
			name: "full body, complete_by as epoch ms",
			body: `{"description":"build the thing","priority":"high",
				"metadata":{ "repo" : "x", "n": [1, 2, {"deep": null}] },
				"needed_capabilities":["go","sql"],"max_retries":5,
				"complete_by":` + ms(decodeFuture) + `}`,
			want: domain.SubmitTask{
				Description:        "build the thing",
				Priority:           domain.PriorityHigh,
				Metadata:           json.RawMessage(`{"repo":"x","n":[1,2,{"deep":null}]}`),
				NeededCapabilities: []string{"go", "sql"},
				MaxRetries:         intPtr(5),
				CompleteBy:         timePtr(decodeFuture),
			},
		},
		{
			name: "full body, complete_by as RFC 3339 with offset",
			body: `{"description":"build the thing","priority":"urgent","metadata":{},
				"needed_capabilities":[],"max_retries":0,"complete_by":"2025-06-01T14:00:00+02:00"}`,
			want: domain.SubmitTask{
				Description:        "build the thing",
				Priority:           domain.PriorityUrgent,
				Metadata:           json.RawMessage(`{}`),
				NeededCapabilities: []string{},
				MaxRetries:         intPtr(0),
				CompleteBy:         timePtr(decodeFuture),
			},
		},
		{
			name: "complete_by as RFC 3339 UTC",
			body: `{"description":"d","complete_by":"2025-06-01T12:00:00Z"}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal, CompleteBy: timePtr(decodeFuture)},
		},
		{
			name: "complete_by one millisecond after now",
			body: `{"description":"d","complete_by":` + ms(decodeNow.Add(time.Millisecond)) + `}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal, CompleteBy: timePtr(decodeNow.Add(time.Millisecond))},
		},
		{
			name: "only description: priority defaults to normal",
			body: `{"description":"d"}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal},
		},
		{
			name: "priority low",
			body: `{"description":"d","priority":"low"}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityLow},
		},
		{
			name: "priority normal",
			body: `{"description":"d","priority":"normal"}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal},
		},
		{
			name: "null optional fields count as missing",
			body: `{"description":"d","priority":null,"metadata":null,"needed_capabilities":null,"max_retries":null,"complete_by":null}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal},
		},
		{
			name: "unknown fields are ignored, including id and submitted_by",
			body: `{"description":"d","id":"forged","submitted_by":"mallory","extra":{"a":[1]},"Priority":7}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal},
		},
		{
			name: "description of exactly 10000 multi-byte characters",
			body: `{"description":` + jsonString(strings.Repeat("é", domain.MaxDescriptionLength)) + `}`,
			want: domain.SubmitTask{Description: strings.Repeat("é", domain.MaxDescriptionLength), Priority: domain.PriorityNormal},
		},
		{
			name: "max_retries at its limit",
			body: `{"description":"d","max_retries":100}`,
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal, MaxRetries: intPtr(100)},
		},
		{
			name: "whitespace around the body and values",
			body: " \n{ \"description\" : \"d\" , \"max_retries\" : 2 }\n ",
			want: domain.SubmitTask{Description: "d", Priority: domain.PriorityNormal, MaxRetries: intPtr(2)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			got, err := decodeSubmit([]byte(tc.body), decodeNow)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeSubmitErrors(t *testing.T) {
	t.Parallel()

	tooManyCaps := `["c0"` + strings.Repeat(`,"c"`, domain.MaxCapabilities) + `]`
	bigMeta := `{"k":` + jsonString(strings.Repeat("x", domain.MaxMetadataBytes)) + `}`

	tests := []struct {
		name string
		body string
		want [][2]string
	}{
		// The body itself.
		{name: "malformed json", body: `{"description":`, want: [][2]string{fieldCode("body", "invalid_json")}},
		{name: "trailing garbage", body: `{"description":"d"} x`, want: [][2]string{fieldCode("body", "invalid_json")}},
		{name: "empty body", body: ``, want: [][2]string{fieldCode("body", "invalid_json")}},
		{name: "json null", body: `null`, want: [][2]string{fieldCode("body", "invalid_json")}},
		{name: "json array", body: `[{"description":"d"}]`, want: [][2]string{fieldCode("body", "invalid_json")}},
		{name: "json string", body: `"d"`, want: [][2]string{fieldCode("body", "invalid_json")}},
		{name: "json number", body: `42`, want: [][2]string{fieldCode("body", "invalid_json")}},

		// description.
		{name: "missing description", body: `{}`, want: [][2]string{fieldCode("description", "required")}},
		{name: "null description", body: `{"description":null}`, want: [][2]string{fieldCode("description", "required")}},
		{name: "blank description", body: `{"description":" \t\n"}`, want: [][2]string{fieldCode("description", "required")}},
		{name: "description as number", body: `{"description":5}`, want: [][2]string{fieldCode("description", "wrong_type")}},
		{name: "description as object", body: `{"description":{"text":"d"}}`, want: [][2]string{fieldCode("description", "wrong_type")}},
		{
			name: "description over 10000 characters",
			body: `{"description":` + jsonString(strings.Repeat("a", domain.MaxDescriptionLength+1)) + `}`,
			want: [][2]string{fieldCode("description", "too_long")},
		},

		// priority.
		{name: "unknown priority", body: `{"description":"d","priority":"asap"}`, want: [][2]string{fieldCode("priority", "invalid")}},
		{name: "priority is case sensitive", body: `{"description":"d","priority":"HIGH"}`, want: [][2]string{fieldCode("priority", "invalid")}},
		{name: "empty priority", body: `{"description":"d","priority":""}`, want: [][2]string{fieldCode("priority", "invalid")}},
		{name: "priority as number", body: `{"description":"d","priority":1}`, want: [][2]string{fieldCode("priority", "wrong_type")}},
		{name: "priority as bool", body: `{"description":"d","priority":true}`, want: [][2]string{fieldCode("priority", "wrong_type")}},

		// metadata.
		{name: "metadata as array", body: `{"description":"d","metadata":[1,2]}`, want: [][2]string{fieldCode("metadata", "wrong_type")}},
		{name: "metadata as string", body: `{"description":"d","metadata":"{}"}`, want: [][2]string{fieldCode("metadata", "wrong_type")}},
		{name: "metadata as number", body: `{"description":"d","metadata":3}`, want: [][2]string{fieldCode("metadata", "wrong_type")}},
		{name: "metadata over 64 KiB", body: `{"description":"d","metadata":` + bigMeta + `}`, want: [][2]string{fieldCode("metadata", "too_long")}},

		// needed_capabilities.
		{name: "capabilities as string", body: `{"description":"d","needed_capabilities":"go"}`, want: [][2]string{fieldCode("needed_capabilities", "wrong_type")}},
		{name: "capabilities as object", body: `{"description":"d","needed_capabilities":{"go":true}}`, want: [][2]string{fieldCode("needed_capabilities", "wrong_type")}},
		{name: "capability item as number", body: `{"description":"d","needed_capabilities":["go",5]}`, want: [][2]string{fieldCode("needed_capabilities[1]", "wrong_type")}},
		{name: "capability item as null is a wrong type", body: `{"description":"d","needed_capabilities":["go",null]}`, want: [][2]string{fieldCode("needed_capabilities[1]", "wrong_type")}},
		{name: "blank capability", body: `{"description":"d","needed_capabilities":["go"," "]}`, want: [][2]string{fieldCode("needed_capabilities[1]", "required")}},
		{
			name: "capability too long",
			body: `{"description":"d","needed_capabilities":[` + jsonString(strings.Repeat("c", domain.MaxCapabilityLength+1)) + `]}`,
			want: [][2]string{fieldCode("needed_capabilities[0]", "too_long")},
		},
		{name: "too many capabilities", body: `{"description":"d","needed_capabilities":` + tooManyCaps + `}`, want: [][2]string{fieldCode("needed_capabilities", "too_long")}},
		{
			name: "two bad items keep their own indexes",
			body: `{"description":"d","needed_capabilities":[1,"go",true]}`,
			want: [][2]string{fieldCode("needed_capabilities[0]", "wrong_type"), fieldCode("needed_capabilities[2]", "wrong_type")},
		},
		{
			// BUG: decodeStrings drops the wrongly typed item, so later
			// items shift down and the domain check reports the blank
			// item at index 1 instead of 2.
			name: "blank item after a wrongly typed item keeps its index",
			body: `{"description":"d","needed_capabilities":[5,"go",""]}`,
			want: [][2]string{fieldCode("needed_capabilities[0]", "wrong_type"), fieldCode("needed_capabilities[2]", "required")},
		},
		{
			// BUG: same shift; here the blank item's shifted index
			// collides with the wrong_type item and is dropped entirely.
			name: "blank item right after a wrongly typed item is reported",
			body: `{"description":"d","needed_capabilities":["go",5,""]}`,
			want: [][2]string{fieldCode("needed_capabilities[1]", "wrong_type"), fieldCode("needed_capabilities[2]", "required")},
		},

		// max_retries.
		{name: "max_retries as string", body: `{"description":"d","max_retries":"3"}`, want: [][2]string{fieldCode("max_retries", "wrong_type")}},
		{name: "max_retries fractional", body: `{"description":"d","max_retries":1.5}`, want: [][2]string{fieldCode("max_retries", "wrong_type")}},
		{name: "max_retries as bool", body: `{"description":"d","max_retries":true}`, want: [][2]string{fieldCode("max_retries", "wrong_type")}},
		{name: "max_retries overflows int", body: `{"description":"d","max_retries":99999999999999999999}`, want: [][2]string{fieldCode("max_retries", "wrong_type")}},
		{name: "max_retries negative", body: `{"description":"d","max_retries":-1}`, want: [][2]string{fieldCode("max_retries", "out_of_range")}},
		{name: "max_retries over limit", body: `{"description":"d","max_retries":101}`, want: [][2]string{fieldCode("max_retries", "out_of_range")}},

		// complete_by.
		{name: "complete_by word", body: `{"description":"d","complete_by":"tomorrow"}`, want: [][2]string{fieldCode("complete_by", "wrong_type")}},
		{name: "complete_by date only", body: `{"description":"d","complete_by":"2025-06-01"}`, want: [][2]string{fieldCode("complete_by", "wrong_type")}},
		{name: "complete_by without zone", body: `{"description":"d","complete_by":"2025-06-01T12:00:00"}`, want: [][2]string{fieldCode("complete_by", "wrong_type")}},
		{name: "complete_by ms as string", body: `{"description":"d","complete_by":"` + ms(decodeFuture) + `"}`, want: [][2]string{fieldCode("complete_by", "wrong_type")}},
		{name: "complete_by fractional", body: `{"description":"d","complete_by":1.5}`, want: [][2]string{fieldCode("complete_by", "wrong_type")}},
		{name: "complete_by as bool", body: `{"description":"d","complete_by":true}`, want: [][2]string{fieldCode("complete_by", "wrong_type")}},
		{name: "complete_by in the past as ms", body: `{"description":"d","complete_by":` + ms(decodePast) + `}`, want: [][2]string{fieldCode("complete_by", "invalid")}},
		{name: "complete_by in the past as RFC 3339", body: `{"description":"d","complete_by":"2024-12-31T23:59:59Z"}`, want: [][2]string{fieldCode("complete_by", "invalid")}},
		{name: "complete_by exactly now", body: `{"description":"d","complete_by":` + ms(decodeNow) + `}`, want: [][2]string{fieldCode("complete_by", "invalid")}},

		// Several at once.
		{
			name: "every field has the wrong type",
			body: `{"description":5,"priority":1,"metadata":[],"needed_capabilities":"go","max_retries":"3","complete_by":"tomorrow"}`,
			want: [][2]string{
				fieldCode("description", "wrong_type"),
				fieldCode("priority", "wrong_type"),
				fieldCode("metadata", "wrong_type"),
				fieldCode("needed_capabilities", "wrong_type"),
				fieldCode("max_retries", "wrong_type"),
				fieldCode("complete_by", "wrong_type"),
			},
		},
		{
			name: "type errors and value errors together",
			body: `{"priority":"asap","needed_capabilities":["go",5],"max_retries":101,"complete_by":` + ms(decodePast) + `}`,
			want: [][2]string{
				fieldCode("description", "required"),
				fieldCode("priority", "invalid"),
				fieldCode("needed_capabilities[1]", "wrong_type"),
				fieldCode("max_retries", "out_of_range"),
				fieldCode("complete_by", "invalid"),
			},
		},
		{
			name: "domain value errors only",
			body: `{"description":" ","max_retries":-1,"complete_by":"2024-01-01T00:00:00Z","needed_capabilities":[""]}`,
			want: [][2]string{
				fieldCode("description", "required"),
				fieldCode("max_retries", "out_of_range"),
				fieldCode("complete_by", "invalid"),
				fieldCode("needed_capabilities[0]", "required"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			got, err := decodeSubmit([]byte(tc.body), decodeNow)
			require.Equal(t, tc.want, fieldCodes(t, err))
			require.Equal(t, domain.SubmitTask{}, got)
		})
	}
}

func TestDecodeSubmitErrorDetails(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		body string
		want []domain.FieldError
	}{
		{
			name: "syntax error names the byte",
			body: `{"description":}`,
			want: []domain.FieldError{{Field: "body", Error: "invalid_json", Detail: "the body must be a JSON object: syntax error at byte 16"}},
		},
		{
			name: "null body",
			body: `null`,
			want: []domain.FieldError{{Field: "body", Error: "invalid_json", Detail: "the body must be a JSON object, not null"}},
		},
		{
			name: "array body",
			body: `[]`,
			want: []domain.FieldError{{Field: "body", Error: "invalid_json", Detail: "the body must be a JSON object: found array"}},
		},
		{
			name: "missing description reported once",
			body: `{}`,
			want: []domain.FieldError{{Field: "description", Error: "required", Detail: "description is required"}},
		},
		{
			name: "unknown priority quotes the value",
			body: `{"description":"d","priority":"asap"}`,
			want: []domain.FieldError{{Field: "priority", Error: "invalid", Detail: `unknown priority "asap": use urgent, high, normal or low`}},
		},
		{
			name: "wrong types",
			body: `{"description":[],"metadata":"x","needed_capabilities":[1],"max_retries":"3","complete_by":"tomorrow"}`,
			want: []domain.FieldError{
				{Field: "description", Error: "wrong_type", Detail: "description must be a string"},
				{Field: "metadata", Error: "wrong_type", Detail: "metadata must be a JSON object"},
				{Field: "needed_capabilities[0]", Error: "wrong_type", Detail: "each item must be a string"},
				{Field: "max_retries", Error: "wrong_type", Detail: "max_retries must be an integer"},
				{Field: "complete_by", Error: "wrong_type", Detail: "complete_by must be epoch milliseconds or an RFC 3339 time"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			_, err := decodeSubmit([]byte(tc.body), decodeNow)
			var ve *domain.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.want, ve.Fields)
		})
	}
}

func TestParseFilter(t *testing.T) {
	t.Parallel()

	urgent, low := domain.PriorityUrgent, domain.PriorityLow
	tests := []struct {
		name    string
		q       ListQuery
		want    projections.Filter
		wantErr []domain.FieldError
	}{
		{name: "empty matches everything", q: ListQuery{}, want: projections.Filter{}},
		{name: "status", q: ListQuery{Status: "queued"}, want: projections.Filter{Status: domain.StatusQueued}},
		{name: "dead_letter status", q: ListQuery{Status: "dead_letter"}, want: projections.Filter{Status: domain.StatusDeadLetter}},
		{name: "priority urgent", q: ListQuery{Priority: "urgent"}, want: projections.Filter{Priority: &urgent}},
		{
			name: "all filters",
			q:    ListQuery{Status: "working", Priority: "low", AssignedTo: "agent-1"},
			want: projections.Filter{Status: domain.StatusWorking, Priority: &low, AssignedTo: "agent-1"},
		},
		{
			name: "unknown status",
			q:    ListQuery{Status: "done"},
			wantErr: []domain.FieldError{{Field: "status", Error: "invalid",
				Detail: `unknown status "done": use one of [waiting queued assigned working completed dead_letter cancelled]`}},
		},
		{
			name: "status is case sensitive",
			q:    ListQuery{Status: "Queued", Priority: "high"},
			wantErr: []domain.FieldError{{Field: "status", Error: "invalid",
				Detail: `unknown status "Queued": use one of [waiting queued assigned working completed dead_letter cancelled]`}},
		},
		{
			name:    "unknown priority",
			q:       ListQuery{Status: "queued", Priority: "asap"},
			wantErr: []domain.FieldError{{Field: "priority", Error: "invalid", Detail: `unknown priority "asap": use urgent, high, normal or low`}},
		},
		{
			name: "both unknown",
			q:    ListQuery{Status: "done", Priority: "asap", AssignedTo: "a"},
			wantErr: []domain.FieldError{
				{Field: "status", Error: "invalid", Detail: `unknown status "done": use one of [waiting queued assigned working completed dead_letter cancelled]`},
				{Field: "priority", Error: "invalid", Detail: `unknown priority "asap": use urgent, high, normal or low`},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			got, err := parseFilter(tc.q)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			var ve *domain.ValidationError
			require.ErrorAs(t, err, &ve)
			require.ErrorIs(t, err, domain.ErrValidation)
			require.Equal(t, tc.wantErr, ve.Fields)
		})
	}
}

func TestValidTaskID(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		id   string
		want bool
	}{
		{name: "empty", id: "", want: false},
		{name: "one char", id: "a", want: true},
		{name: "all allowed characters", id: "task-0123456789_abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ", want: true},
		{name: "generated id", id: writer.NewTaskID(), want: true},
		{name: "128 characters", id: strings.Repeat("a", 128), want: true},
		{name: "129 characters", id: strings.Repeat("a", 129), want: false},
		{name: "subject separator", id: "task.1", want: false},
		{name: "wildcard star", id: "task*", want: false},
		{name: "wildcard gt", id: "task>", want: false},
		{name: "space", id: "task 1", want: false},
		{name: "slash", id: "task/1", want: false},
		{name: "path traversal", id: "..", want: false},
		{name: "newline", id: "task\n", want: false},
		{name: "non-ascii letter", id: "tâche", want: false},
		{name: "colon", id: "task:1", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			require.Equal(t, tc.want, domain.ValidTaskID(tc.id), "domain.ValidTaskID(%q)", tc.id)
		})
	}
}

func TestDecodeSubmitTextMustBeValidUTF8WithoutNUL(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"invalid UTF-8":   "{\"description\":\"bad \xff byte\"}",
		"escaped NUL":     `{"description":"a\u0000b"}`,
		"capability NUL":  `{"description":"ok","needed_capabilities":["go","a\u0000"]}`,
		"capability FFFE": "{\"description\":\"ok\",\"needed_capabilities\":[\"\xc3\x28\"]}",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeSubmit([]byte(body), decodeNow)
			codes := fieldCodes(t, err)
			require.Len(t, codes, 1, "one field is wrong: %v", codes)
			require.Equal(t, "invalid", codes[0][1])
			require.Contains(t, []string{"description", "needed_capabilities[0]", "needed_capabilities[1]"}, codes[0][0])
		})
	}
}

func TestDecodeSubmitRunAtAndBackoff(t *testing.T) {
	t.Parallel()
	body := `{"description":"later","run_at":"` + decodeFuture.Format(time.RFC3339) + `","retry_base":"5s","retry_max":"2m"}`
	cmd, err := decodeSubmit([]byte(body), decodeNow)
	require.NoError(t, err)
	require.Equal(t, decodeFuture, *cmd.RunAt)
	require.Equal(t, 5*time.Second, *cmd.RetryBase)
	require.Equal(t, 2*time.Minute, *cmd.RetryMax)

	_, err = decodeSubmit([]byte(`{"description":"x","retry_base":"soon","retry_max":5,"run_at":true}`), decodeNow)
	require.ElementsMatch(t, [][2]string{fieldCode("retry_base", "wrong_type"), fieldCode("retry_max", "wrong_type"),
		fieldCode("run_at", "wrong_type")}, fieldCodes(t, err))
}
