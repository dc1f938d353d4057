package telemetry_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/telemetry"
)

// TestCatalogMatchesDocs keeps docs/telemetry.md and the catalog in step.
func TestCatalogMatchesDocs(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/telemetry.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| ([^|]*) \\| ([^|]*) \\| ([^|]*) \\|$")
	docs := map[string][2][]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		docs[m[1]] = [2][]string{names(m[2]), names(m[3])}
	}
	require.Len(t, docs, len(telemetry.Catalog), "docs/telemetry.md lists a different number of events")
	for _, s := range telemetry.Catalog {
		d, ok := docs[s.Name]
		require.True(t, ok, "%s is not in docs/telemetry.md", s.Name)
		require.ElementsMatch(t, s.Measurements, d[0], "%s measurements", s.Name)
		require.ElementsMatch(t, s.Metadata, d[1], "%s metadata", s.Name)
	}
}

func names(cell string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	if strings.TrimSpace(cell) == "–" {
		return nil
	}
	return out
}
