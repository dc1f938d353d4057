package domain_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

func TestCheckAgentID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "my-agent", "A_1-b", strings.Repeat("x", domain.MaxAgentIDLength)} {
		require.NoError(t, domain.CheckAgentID(ok), ok)
	}
	for id, want := range map[string]string{
		"":                       "required: one NATS subject token",
		"bad.id":                 `"bad.id" may hold only letters, digits, '_' and '-' (it is one NATS subject token): '.' is not allowed`,
		"a*":                     `'*' is not allowed`,
		"a b":                    `' ' is not allowed`,
		"é":                      `'é' is not allowed`,
		strings.Repeat("x", 129): "129 characters, at most 128",
	} {
		err := domain.CheckAgentID(id)
		require.Error(t, err, id)
		require.Contains(t, err.Error(), want, id)
	}
}
