package sqlite

import (
	"fmt"
	"os"

	"github.com/govlog/govlog/log"
)

// fileIdentity is the database file a Backend opened. SQLite keeps writing
// to an open file after it was unlinked, or after its directory was
// removed or replaced; commits would then succeed into a file no restart
// will see again. Append and the reload check, before they commit, that
// the path still names the file opened.
type fileIdentity struct {
	path string
	fi   os.FileInfo
}

func statFile(path string) (fileIdentity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileIdentity{}, fmt.Errorf("failed to stat %s: %w", path, err)
	}
	return fileIdentity{path: path, fi: fi}, nil
}

// check returns an error wrapping log.ErrUnavailable unless the path still
// names the file opened. The zero fileIdentity checks nothing.
func (f fileIdentity) check() error {
	if f.fi == nil {
		return nil
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("%w: the log database %s is gone (was the data directory removed?): %w", log.ErrUnavailable, f.path, err)
	}
	if !os.SameFile(fi, f.fi) {
		return fmt.Errorf("%w: %s is no longer the log database this process opened (was it replaced?); restart govlogd", log.ErrUnavailable, f.path)
	}
	return nil
}
