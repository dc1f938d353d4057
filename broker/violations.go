package broker

import (
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
)

// PermissionViolation is a publish or subscribe the server denied an
// agent's connection.
type PermissionViolation struct {
	AgentID string
	// Op is publish, reply (a publish whose reply subject is denied) or
	// subscribe.
	Op      string
	Subject string
}

// violationHook receives the permission violations the server logs.
type violationHook = atomic.Pointer[func(PermissionViolation)]

// OnPermissionViolation sends every permission violation of an agent to
// fn instead of the server's own log line. fn runs on the server's
// goroutine of the offending connection: it must not block.
//
// nats-server offers no hook or advisory for permission violations; it
// only logs them (client.go, pubPermissionViolation and friends), so the
// log line is parsed (parsePermissionViolation).
func (s *Server) OnPermissionViolation(fn func(PermissionViolation)) { s.violations.Store(&fn) }

// permissionLine matches the server's violation line after the client's
// label: its last quoted part is "<account>/user:<user>". Names the client
// chose are inside %q quotes before it, so they cannot fake this part:
// a quote in them is escaped, and none of [^"] spans one.
var permissionLine = regexp.MustCompile(` - "[^"]*/user:agent:([^"\\]+)" - (Publish|Subscription) Violation(?: Too Many Tokens)? - (Subject|Reply) ("(?:[^"\\]|\\.)*")(?:, .*)?$`)

// parsePermissionViolation reads an agent's permission violation out of
// one line of the server's log.
func parsePermissionViolation(line string) (PermissionViolation, bool) {
	if !strings.Contains(line, " Violation") {
		return PermissionViolation{}, false
	}
	m := permissionLine.FindStringSubmatch(line)
	if m == nil {
		return PermissionViolation{}, false
	}
	subject, err := strconv.Unquote(m[4])
	if err != nil {
		return PermissionViolation{}, false
	}
	op := "subscribe"
	switch {
	case m[2] == "Publish" && m[3] == "Reply":
		op = "reply"
	case m[2] == "Publish":
		op = "publish"
	}
	return PermissionViolation{AgentID: m[1], Op: op, Subject: subject}, true
}

// permissionViolation hands a violation line to the hook, or logs it as
// the hub's own warning when no hook is set yet. It reports whether the
// line was one.
func (l natsLogger) permissionViolation(line string) bool {
	v, ok := parsePermissionViolation(line)
	if !ok {
		return false
	}
	if fn := l.violations.Load(); fn != nil {
		(*fn)(v)
		return true
	}
	l.log.Warning().Str("agent_id", v.AgentID).Str("op", v.Op).Str("subject", v.Subject).Msg("agent permission violation")
	return true
}

// SetAgentAdmission makes Check ask admit before it lets an agent in: an
// error refuses the connection (the hub refuses an agent in its violation
// cooldown, and opens the agent's lane there).
func (a *Authenticator) SetAgentAdmission(admit func(agentID string) error) {
	a.agentAdmit.Store(&admit)
}

// admitAgent asks the admission hook, if any.
func (a *Authenticator) admitAgent(agentID string) error {
	if fn := a.agentAdmit.Load(); fn != nil {
		return (*fn)(agentID)
	}
	return nil
}
