package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// FreeBytes is the space an unprivileged writer may still use on the
// volume that holds dir, which it creates if missing.
func FreeBytes(dir string) (int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("create data dir: %w", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("read free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// StoreBytes is the disk space the JetStream store under dataDir takes
// now (0 when there is none yet).
func StoreBytes(dataDir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(filepath.Join(dataDir, "jetstream"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, ierr := d.Info(); ierr == nil && !d.IsDir() {
			total += info.Size()
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("measure store: %w", err)
	}
	return total, nil
}
