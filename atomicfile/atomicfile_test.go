package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/atomicfile"
)

func TestWriteReplacesWholeFilesOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	require.NoError(t, atomicfile.Write(path, 0o600, []byte("first")))
	require.NoError(t, atomicfile.Write(path, 0o600, []byte("sec"), []byte("ond")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "second", string(b))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	left, err := filepath.Glob(filepath.Join(filepath.Dir(path), atomicfile.TempPattern(path)))
	require.NoError(t, err)
	require.Empty(t, left, "no temporary file is left")
}

func TestWriteIntoAMissingDirectoryThatCannotBeMadeFails(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.Error(t, atomicfile.Write(filepath.Join(file, "x"), 0o600, []byte("x")))
}
