package ops

import "reflect"

// ToolSchema is op's input as one JSON Schema object, for an MCP tool: its
// path parameters (required strings) and its body's or filters' fields, as
// the NATS command takes them in one body. Named types are under $defs.
func ToolSchema(o Op) map[string]any {
	body := o.Request
	if body == nil {
		body = o.Query
	}
	return inputSchema(o.Params(), body)
}

// TypeSchema is a struct type's fields as one JSON Schema object (named
// types under $defs), for a tool that takes that body.
func TypeSchema(t reflect.Type) map[string]any { return inputSchema(nil, t) }

// inputSchema is an object of params (required strings) and body's fields.
func inputSchema(params []string, body reflect.Type) map[string]any {
	s := NewSchemas()
	s.ref = "#/$defs/" // the schema stands alone
	props, required := map[string]any{}, []string{}
	for _, p := range params {
		props[p] = map[string]any{"type": "string"}
		required = append(required, p)
	}
	if body != nil && body.Kind() == reflect.Struct {
		fields := s.object(body)
		for k, v := range fields["properties"].(map[string]any) {
			props[k] = v
		}
		required = append(required, fields["required"].([]string)...)
	}
	out := map[string]any{"type": "object", "properties": props, "required": required}
	if len(s.Defs) > 0 {
		out["$defs"] = s.Defs
	}
	return out
}
