package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// countingSource hands out 4 MiB chunks and counts them.
type countingSource struct{ handed atomic.Int32 }

func (s *countingSource) Recv() (*sealgatev1.UploadArtifactRequest, error) {
	s.handed.Add(1)
	return &sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 4<<20)}}, nil
}

// uploadMemory counts one decoded message per upload: the receiver takes
// the next one from gRPC only when the handler asks for it, not while the
// handler still works on the last one (second review: it read one ahead,
// so a slow store or a scan share held two messages against a reservation
// of one).
func TestReceiverTakesAMessageOnlyWhenAsked(t *testing.T) {
	src := &countingSource{}
	r := newReceiver(src, progressRules{idle: time.Minute, minRate: 1, window: time.Hour, maxDuration: time.Hour})
	defer r.stop()
	for i := 1; i <= 3; i++ {
		if _, err := r.recv(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The handler works on message i a while.
		time.Sleep(50 * time.Millisecond)
		if n := src.handed.Load(); n != int32(i) {
			t.Fatalf("while the handler holds message %d, the receiver has taken %d from gRPC", i, n)
		}
	}
}
