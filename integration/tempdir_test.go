package integration

import "os"

// tempDirOutsideTest makes a directory for artefacts shared by several tests
// (t.TempDir belongs to one test). It is removed when the test binary exits.
func tempDirOutsideTest() (string, error) {
	dir, err := os.MkdirTemp("", "wsrpc-integration-")
	if err != nil {
		return "", err
	}
	sharedDirs = append(sharedDirs, dir)
	return dir, nil
}

var sharedDirs []string
