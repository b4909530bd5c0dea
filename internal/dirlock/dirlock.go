// Package dirlock gives a data directory to one process at a time.
//
// Two processes writing one data directory (two govlogd on one --data, say)
// would not corrupt it — SQLite locks its database — but every write of
// each would wait for the other's busy timeout, and the second process
// would sign and serve checkpoints the first does not know about. Acquire
// takes an exclusive flock(2) on the file LockFile in the directory and
// writes the holder's process id, program name and start time into it; a
// second Acquire on the same directory fails at once with a *HeldError
// naming the holder. The kernel releases the lock when the holder exits,
// however it exits (kill -9 included): a lock file left behind by a dead
// process does not block the next one.
//
// On systems without flock (not Unix) Acquire takes no lock.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the name of the lock file in a data directory.
const LockFile = "lock"

// Lock is a held lock on a data directory.
type Lock struct {
	f *os.File
}

// HeldError is the failure of Acquire on a directory another process holds.
type HeldError struct {
	// Dir is the data directory.
	Dir string
	// PID, Program and Since describe the holder, as it wrote them into the
	// lock file; PID is 0 when it has not written them (yet).
	PID     int
	Program string
	Since   time.Time
}

func (e *HeldError) Error() string {
	holder := "another process"
	if e.PID != 0 {
		holder = fmt.Sprintf("%s (pid %d, since %s)", e.Program, e.PID, e.Since.Format(time.RFC3339))
	}
	return fmt.Sprintf("the data directory %s is in use by %s: one process at a time may use a data directory; "+
		"stop that one first, or give this one another directory", e.Dir, holder)
}

// ErrHeld is wrapped by every *HeldError (errors.Is).
var ErrHeld = errors.New("the data directory is in use")

func (e *HeldError) Unwrap() error { return ErrHeld }

// Acquire locks dir (which must exist) for program, the name written into
// the lock file. It fails with a *HeldError when another process holds the
// lock.
func Acquire(dir, program string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open the lock file %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	if held {
		f.Close()
		return nil, holder(dir, path)
	}
	text := fmt.Sprintf("%d %s %s\n", os.Getpid(), program, time.Now().UTC().Format(time.RFC3339))
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(text), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to write the lock file %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// holder reads who holds the lock. The holder writes its line right after
// it takes the lock: give it a moment when the file is still empty.
func holder(dir, path string) error {
	e := &HeldError{Dir: dir}
	for range 20 {
		data, _ := os.ReadFile(path)
		fields := strings.Fields(string(data))
		if len(fields) == 3 {
			pid, err1 := strconv.Atoi(fields[0])
			since, err2 := time.Parse(time.RFC3339, fields[2])
			if err1 == nil && err2 == nil && pid > 0 {
				e.PID, e.Program, e.Since = pid, fields[1], since
				return e
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e
}

// Release releases the lock. The lock file stays: removing it would let a
// process lock a new file while another still holds the old one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
