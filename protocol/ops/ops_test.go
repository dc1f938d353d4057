package ops_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

func TestTableNamesAndRoutesAreUnique(t *testing.T) {
	names, routes := map[string]bool{}, map[string]bool{}
	for _, o := range ops.All {
		require.False(t, names[o.Name], "name %s twice", o.Name)
		require.False(t, routes[o.Pattern()], "route %s twice", o.Pattern())
		names[o.Name], routes[o.Pattern()] = true, true
		require.Regexp(t, `^[a-z_]+\.[a-z_]+$`, o.Name)
		require.Equal(t, broker.CommandPrefix+o.Name, o.Subject())
		require.Contains(t, []ops.Access{ops.Public, ops.Read, ops.Admin}, o.Access, o.Name)
		require.NotEmpty(t, o.Summary, o.Name)
		require.NotEmpty(t, o.Answers, o.Name)
	}
}

func TestSchemasFollowEncodingJSON(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type sample struct {
		Name    string          `json:"name"`
		Opt     string          `json:"opt,omitempty"`
		At      time.Time       `json:"at"`
		Raw     json.RawMessage `json:"raw"`
		Prio    domain.Priority `json:"prio"`
		Ptr     *inner          `json:"ptr"`
		List    []inner         `json:"list"`
		Map     map[string]int  `json:"map"`
		Skipped string          `json:"-"`
		hidden  string
	}
	s := ops.NewSchemas()
	require.Equal(t, map[string]any{"$ref": "#/components/schemas/sample"}, s.Of(reflect.TypeFor[sample]()))
	def := s.Defs["sample"].(map[string]any)
	props := def["properties"].(map[string]any)
	require.Equal(t, []string{"name", "at", "raw", "prio", "ptr", "list", "map"}, def["required"])
	require.Equal(t, map[string]any{"type": "string", "format": "date-time"}, props["at"])
	require.Equal(t, map[string]any{}, props["raw"])
	require.Equal(t, map[string]any{"type": "string"}, props["prio"])
	require.Equal(t, map[string]any{"anyOf": []any{map[string]any{"$ref": "#/components/schemas/inner"},
		map[string]any{"type": "null"}}}, props["ptr"])
	require.Equal(t, map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/inner"}}, props["list"])
	require.Equal(t, map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "integer"}}, props["map"])
	require.NotContains(t, props, "Skipped")
	require.NotContains(t, props, "hidden")
	_ = sample{}.hidden
}

// TestOpenAPIIsWellFormed checks the document's structure as OpenAPI 3.1
// asks: every operation has responses, every path parameter is
// declared, every $ref resolves, and operation ids are unique.
func TestOpenAPIIsWellFormed(t *testing.T) {
	b, err := json.Marshal(ops.OpenAPI("v-test", ops.All))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Equal(t, "v-test", doc["info"].(map[string]any)["version"])
	require.NotEmpty(t, doc["info"].(map[string]any)["title"])
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, ref := range refs(doc) {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		require.True(t, ok, ref)
		require.Contains(t, schemas, name, "unresolved $ref %s", ref)
	}
	ids := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		require.True(t, strings.HasPrefix(path, "/"), path)
		for method, v := range item.(map[string]any) {
			op := v.(map[string]any)
			require.Contains(t, []string{"get", "put", "post", "delete"}, method)
			id := op["operationId"].(string)
			require.False(t, ids[id], "operationId %s twice", id)
			ids[id] = true
			require.NotEmpty(t, op["responses"], id)
			requirePathParams(t, path, op)
		}
	}
	require.Len(t, ids, len(ops.All))
}

// requirePathParams checks that op declares exactly the {params} of path.
func requirePathParams(t *testing.T, path string, op map[string]any) {
	t.Helper()
	var want, got []string
	for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
		want = append(want, m[1])
	}
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		p := p.(map[string]any)
		require.Contains(t, []string{"path", "query"}, p["in"])
		require.NotEmpty(t, p["schema"])
		if p["in"] == "path" {
			require.Equal(t, true, p["required"])
			got = append(got, p["name"].(string))
		}
	}
	require.Equal(t, want, got, path)
}

// refs are the values of every $ref in v.
func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

// TestDocsListEveryOperation keeps docs/protocol.md in step with the
// table: every route and every command name is on the page.
func TestDocsListEveryOperation(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	require.NoError(t, err)
	doc := string(b)
	for _, o := range ops.All {
		require.Contains(t, doc, "`"+o.Pattern(), "docs/protocol.md does not list %s", o.Pattern())
		require.Contains(t, doc, o.Name+"`", "docs/protocol.md does not list command %s", o.Name)
	}
}

// The request schemas hold: a sound submit body passes, a wrong type and
// an unknown batch shape do not.
func TestRequestSchemasValidateBodies(t *testing.T) {
	doc, err := json.Marshal(ops.RequestSchemas(ops.All))
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("schemas.json", inst))
	submit, err := c.Compile("schemas.json#/requests/task.submit")
	require.NoError(t, err)
	valid := func(s *jsonschema.Schema, body string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		require.NoError(t, err)
		return s.Validate(v)
	}
	require.NoError(t, valid(submit, `{"description":"build it","priority":"high","needed_capabilities":["go"]}`))
	require.Error(t, valid(submit, `{"description":1}`))
	batch, err := c.Compile("schemas.json#/requests/task.submit_batch")
	require.NoError(t, err)
	require.Error(t, valid(batch, `{"tasks":"no"}`))
}
