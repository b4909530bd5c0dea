package sqlite

import (
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/govlog/govlog/log"
)

// minFreeBytes is the free space the file system of the database must have
// before a failed backend reports ready again. A failed batch may leave
// pages SQLite already reserved, in which a small probe write still fits
// although the next batch would not: readiness must not say yes to a full
// disk.
const minFreeBytes = 4 << 20

// checkFreeSpace returns an error wrapping log.ErrUnavailable when the file
// system holding path has less than minFreeBytes available.
func checkFreeSpace(path string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return fmt.Errorf("%w: failed to read the free space of %s: %w", log.ErrUnavailable, filepath.Dir(path), err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < minFreeBytes {
		return fmt.Errorf("%w: the file system of %s has %d bytes free, below the %d needed to resume", log.ErrUnavailable, filepath.Dir(path), free, minFreeBytes)
	}
	return nil
}
