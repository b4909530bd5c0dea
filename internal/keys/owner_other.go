//go:build !unix

package keys

import "io/fs"

// checkOwner is a no-op where file ownership is not a uid.
func checkOwner(fs.FileInfo) error { return nil }

// openFlags are the flags of opening a file to read besides O_RDONLY.
const openFlags = 0
