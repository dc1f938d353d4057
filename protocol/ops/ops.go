// Package ops declares every hub operation once: its NATS command name,
// its HTTP method and path, who may call it, its request and answer
// types and the error statuses it can answer. The hub builds its HTTP mux
// and its NATS command API from this table, the CLI's client calls
// operations by their entry, and OpenAPI derives the document served at
// GET /api/openapi.json. It imports no server code.
package ops

import (
	"reflect"
	"regexp"
	"slices"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/limits"
)

// Access is who may call an operation.
type Access string

const (
	// Public operations are open to anyone, token or not (health, the
	// OpenAPI document).
	Public Access = "public"
	// Read operations need a viewer or admin token, or an agent token
	// where the op says Agents; they are open without one over HTTP on
	// loopback while http.open_reads allows (docs/protocol.md, roles).
	Read Access = "read"
	// Admin operations need an admin token.
	Admin Access = "admin"
)

// TierOf is op's rate-limit tier, "" for a public op.
func (o Op) TierOf() limits.Tier {
	switch {
	case o.Tier != "":
		return o.Tier
	case o.Access == Read:
		return limits.Light
	case o.Access == Admin:
		return limits.Normal
	}
	return ""
}

// Needs is the role a refusal names: the least role that may call op.
func (o Op) Needs() string {
	if o.Access == Admin {
		return "admin"
	}
	return "viewer"
}

// Answer is one success status of an operation and the type of its body.
type Answer struct {
	Status int
	Type   reflect.Type
}

// Op is one hub operation.
type Op struct {
	// Name is the NATS command name; the subject is broker.CommandPrefix + Name.
	Name string
	// Method and Path are the HTTP route; {param}s in Path come from the
	// path over HTTP and from the body's field of the same name over NATS.
	Method, Path string
	Access       Access
	// Agents lets an agent token call a Read op: its answer then holds
	// only what concerns the agent (itself, the tasks it holds or held).
	Agents bool
	// Tier is the op's rate-limit tier; empty is light for reads and
	// normal for admin ops (TierOf). Public ops are not limited.
	Tier    limits.Tier
	Summary string
	// Request is the JSON body's type, nil when there is none;
	// OptionalBody says the body may be left out.
	Request      reflect.Type
	OptionalBody bool
	// Query is the type of the filters: the query string over HTTP, the
	// body over NATS. Nil when there are none.
	Query reflect.Type
	// Answers are the success statuses; Errors the error statuses, each
	// answered with an ErrorBody.
	Answers []Answer
	Errors  []int
	// MaxBody bounds the HTTP body (0: 1 MiB); over NATS the server's
	// max_payload bounds every request.
	MaxBody int
}

// Pattern is the op's http.ServeMux pattern, such as "GET /api/tasks/{id}".
func (o Op) Pattern() string { return o.Method + " " + o.Path }

// Subject is the op's NATS command subject.
func (o Op) Subject() string { return broker.Command(o.Name) }

var paramRE = regexp.MustCompile(`\{([a-z_]+)\}`)

// Params are the names of the op's path parameters, in path order.
func (o Op) Params() []string {
	var out []string
	for _, m := range paramRE.FindAllStringSubmatch(o.Path, -1) {
		out = append(out, m[1])
	}
	return out
}

// authErrors are what the HTTP admin check and body read can answer.
var authErrors = []int{400, 401, 403, 413, 429}

// HTTPErrors are the error statuses over HTTP: Errors, and for admin
// and read operations those of the token check and the body read.
func (o Op) HTTPErrors() []int {
	out := slices.Clone(o.Errors)
	if o.Access != Public {
		out = append(out, authErrors...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// typeOf is the reflect.Type of T, for the table's declarations.
func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// ok is a one-answer list: status with a body of type T.
func ok[T any](status int) []Answer { return []Answer{{status, typeOf[T]()}} }

// ByName returns the op of a command name.
func ByName(name string) (Op, bool) {
	for _, o := range All {
		if o.Name == name {
			return o, true
		}
	}
	return Op{}, false
}
