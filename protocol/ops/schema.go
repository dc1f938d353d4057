package ops

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// schemaRef is where OpenAPI keeps named schemas.
const schemaRef = "#/components/schemas/"

// Schemas derives JSON Schema 2020-12 from Go types as encoding/json
// encodes them: struct fields by json tag (omitempty: not required),
// time.Time a date-time string, json.RawMessage any JSON, a type with its
// own MarshalJSON a string (domain.Priority, domain.Duration), a pointer
// its value or null. Named structs become Defs, referred to by $ref.
type Schemas struct {
	Defs  map[string]any
	types map[string]reflect.Type
	ref   string // where the $refs point: OpenAPI's components, or a schema's own $defs
}

// NewSchemas returns an empty set of definitions, referred to as OpenAPI
// keeps them.
func NewSchemas() *Schemas {
	return &Schemas{Defs: map[string]any{}, types: map[string]reflect.Type{}, ref: schemaRef}
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawType     = reflect.TypeFor[json.RawMessage]()
	marshalType = reflect.TypeFor[json.Marshaler]()
)

// Of returns the schema of t: a $ref for a named struct.
func (s *Schemas) Of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t.Kind() == reflect.Pointer:
		return map[string]any{"anyOf": []any{s.Of(t.Elem()), map[string]any{"type": "null"}}}
	case t.Kind() != reflect.Struct && t.Implements(marshalType):
		return map[string]any{"type": "string"}
	}
	return s.kind(t)
}

func (s *Schemas) kind(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": s.Of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": s.Of(t.Elem())}
	case reflect.Struct:
		return s.named(t)
	}
	return map[string]any{} // an interface: any JSON
}

// named defines a named struct once and refers to it; an anonymous
// struct is inline.
func (s *Schemas) named(t reflect.Type) map[string]any {
	if t.Name() == "" {
		return s.object(t)
	}
	name := t.Name()
	if have, ok := s.types[name]; ok && have != t {
		name = strings.ReplaceAll(t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:], ".", "_") + "." + t.Name()
	}
	if _, ok := s.types[name]; !ok {
		s.types[name] = t
		s.Defs[name] = map[string]any{} // a placeholder, for recursive types
		s.Defs[name] = s.object(t)
	}
	return map[string]any{"$ref": s.ref + name}
}

// object is a struct's schema: its fields as encoding/json names them.
func (s *Schemas) object(t reflect.Type) map[string]any {
	props, required := map[string]any{}, []string{}
	for _, f := range reflect.VisibleFields(t) {
		name, omit, ok := jsonField(f)
		if !ok {
			continue
		}
		props[name] = s.Of(f.Type)
		if !omit {
			required = append(required, name)
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": required}
}

// jsonField is a field's JSON name and whether it is omitempty; ok is
// false for a field encoding/json leaves out (or flattens, if embedded).
func jsonField(f reflect.StructField) (name string, omit, ok bool) {
	tag := f.Tag.Get("json")
	if !f.IsExported() || tag == "-" || (f.Anonymous && tag == "") {
		return "", false, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,"), true
}
