package domain

import (
	"errors"
	"fmt"
	"strings"
)

// MaxAgentIDLength bounds an agent id.
const MaxAgentIDLength = 128

// CheckAgentID says what is wrong with an agent id, or returns nil. An
// agent id is one NATS subject token, because it is part of every subject
// the agent may use: letters, digits, '_' and '-', at most
// MaxAgentIDLength characters. The hub (token create) and the sidecar's
// config both check ids with it.
func CheckAgentID(id string) error {
	switch {
	case id == "":
		return errors.New("required: one NATS subject token of letters, digits, '_' and '-'")
	case len(id) > MaxAgentIDLength:
		return fmt.Errorf("%d characters, at most %d", len(id), MaxAgentIDLength)
	}
	if i := strings.IndexFunc(id, func(c rune) bool { return !idChar(c) }); i >= 0 {
		return fmt.Errorf("%q may hold only letters, digits, '_' and '-' (it is one NATS subject token): %q is not allowed",
			id, []rune(id[i:])[0])
	}
	return nil
}

func idChar(c rune) bool {
	return c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// ValidTaskID accepts ids that are one safe subject token (the same
// characters as an agent id, at most 128); nothing else can name a stored
// task.
func ValidTaskID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsFunc(id, func(c rune) bool { return !idChar(c) })
}
