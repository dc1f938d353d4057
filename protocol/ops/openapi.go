package ops

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// OpenAPI is the OpenAPI 3.1 document of the HTTP API, derived from ops:
// every route with its parameters, request body, answers and errors.
func OpenAPI(version string, ops []Op) map[string]any {
	s := NewSchemas()
	errRef := s.Of(reflect.TypeFor[ErrorBody]())
	paths := map[string]any{}
	for _, o := range ops {
		item, _ := paths[o.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[o.Path] = item
		}
		item[strings.ToLower(o.Method)] = operation(s, o, errRef)
	}
	return map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": map[string]any{"title": "AgentCom hub", "version": version,
			"description": "The hub's HTTP API. Every operation is also a NATS command, agentcom.cmd.<operationId>."},
		"paths": paths,
		"components": map[string]any{"schemas": s.Defs,
			"securitySchemes": map[string]any{
				"admin": map[string]any{"type": "http", "scheme": "bearer", "description": "an admin token"},
				"token": map[string]any{"type": "http", "scheme": "bearer", "description": "a viewer, admin or agent token"},
			}},
	}
}

func operation(s *Schemas, o Op, errRef map[string]any) map[string]any {
	out := map[string]any{"operationId": o.Name, "summary": o.Summary, "responses": responses(s, o, errRef)}
	if params := parameters(s, o); len(params) > 0 {
		out["parameters"] = params
	}
	if o.Request != nil {
		out["requestBody"] = map[string]any{"required": !o.OptionalBody,
			"content": jsonContent(s.Of(o.Request))}
	}
	switch o.Access {
	case Admin:
		out["security"] = []any{map[string]any{"admin": []any{}}}
	case Read: // a token, or none where reads are open
		out["security"] = []any{map[string]any{"token": []any{}}, map[string]any{}}
	}
	return out
}

func parameters(s *Schemas, o Op) []any {
	var out []any
	for _, p := range o.Params() {
		out = append(out, map[string]any{"name": p, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	if o.Query == nil {
		return out
	}
	for _, f := range reflect.VisibleFields(o.Query) {
		if name, _, ok := jsonField(f); ok {
			out = append(out, map[string]any{"name": name, "in": "query", "required": false, "schema": s.Of(f.Type)})
		}
	}
	return out
}

func responses(s *Schemas, o Op, errRef map[string]any) map[string]any {
	out := map[string]any{}
	for _, a := range o.Answers {
		content := jsonContent(s.Of(a.Type))
		if a.Type == reflect.TypeFor[Text]() {
			content = map[string]any{TextFormat: map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		out[strconv.Itoa(a.Status)] = map[string]any{"description": http.StatusText(a.Status), "content": content}
	}
	for _, code := range o.HTTPErrors() {
		out[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code), "content": jsonContent(errRef)}
	}
	return out
}

func jsonContent(schema map[string]any) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": schema}}
}

// RequestSchemas is every operation's request body schema (and its
// filters', for an op that takes them in the query string), by NATS
// command name, from the same derivation as OpenAPI. Named types are
// under components.schemas of the same document, where the $refs point.
func RequestSchemas(ops []Op) map[string]any {
	s := NewSchemas()
	bodies, queries := map[string]any{}, map[string]any{}
	for _, o := range ops {
		if o.Request != nil {
			bodies[o.Name] = s.Of(o.Request)
		}
		if o.Query != nil {
			queries[o.Name] = s.Of(o.Query)
		}
	}
	return map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema",
		"requests": bodies, "queries": queries, "components": map[string]any{"schemas": s.Defs}}
}
