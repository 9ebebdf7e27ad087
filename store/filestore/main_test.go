package filestore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any of them leaves a goroutine
// behind (a fetcher, a mover worker, a stream handler that never returns).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
