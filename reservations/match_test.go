package reservations

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/protocol"
)

func TestOverlap(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"src/main.go", "src/main.go", true},
		{"src/main.go", "./src/main.go", true},
		{"src/main.go", "src/other.go", false},
		{"src/*.go", "src/main.go", true},
		{"src/*.go", "src/sub/main.go", false}, // * stays within a segment
		{"src/**", "src/sub/deep/main.go", true},
		{"src/**", "docs/a.md", false},
		{"docs/*.md", "src/**", false},
		{"src/*.go", "src/**", true}, // two globs: by their literal starts
		{"a?c", "abc", true},
	} {
		require.Equal(t, c.want, overlap(c.a, c.b), "%s ~ %s", c.a, c.b)
		require.Equal(t, c.want, overlap(c.b, c.a), "%s ~ %s", c.b, c.a)
	}
}

func TestConflictsIgnoreTheAgentsOwnAndSharedWithShared(t *testing.T) {
	t.Parallel()
	held := []protocol.Reservation{
		{AgentID: "a1", Paths: []string{"x.go"}, Exclusive: true},
		{AgentID: "a2", Paths: []string{"y.go"}},
	}
	require.Empty(t, conflicts(held, "a1", protocol.Reserve{Paths: []string{"x.go"}, Exclusive: true}))
	require.Len(t, conflicts(held, "a3", protocol.Reserve{Paths: []string{"x.go"}}), 1, "shared against exclusive")
	require.Empty(t, conflicts(held, "a3", protocol.Reserve{Paths: []string{"y.go"}}), "shared with shared")
	require.Len(t, conflicts(held, "a3", protocol.Reserve{Paths: []string{"*.go"}, Exclusive: true}), 2)
}
