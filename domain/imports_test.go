package domain_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDomainImportsOnlyStandardLibrary enforces the layering rule: domain
// imports nothing from the project, NATS or any other module.
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(".", name), nil, parser.ImportsOnly)
		require.NoError(t, err)
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			first, _, _ := strings.Cut(path, "/")
			require.NotEqual(t, "C", path, "%s uses cgo", name)
			require.NotContains(t, first, ".", "%s imports %q, which is not in the standard library", name, path)
		}
	}
	require.GreaterOrEqual(t, checked, 6, "expected to check every domain source file")
}
