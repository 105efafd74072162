//go:build !unix

package local

// lockFile is a no-op where flock(2) is missing: there, only one process may
// use a data directory at a time (the in-process mutex still applies).
func lockFile(path string, exclusive bool) (unlock func(), err error) {
	return func() {}, nil
}
