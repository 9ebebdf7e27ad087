package gateway

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// defaultReadStall is how long one ReadArtifact message may wait for the
// client's flow control before the read is ended.
const defaultReadStall = 2 * time.Minute

func (g *Gateway) readStall() time.Duration {
	if g.cfg.ReadStallTimeout > 0 {
		return g.cfg.ReadStallTimeout
	}
	return defaultReadStall
}

// sender sends a read's messages from its own goroutine, so that the
// handler can give up on a client that stops reading: gRPC's Send blocks
// while the client's flow-control window is full, and only the end of the
// handler (which cancels the stream) unblocks it.
type sender struct {
	stream sealgatev1.ArtifactService_ReadArtifactServer
	msgs   chan *readMessage
	errs   chan error
}

func (g *Gateway) newSender(stream sealgatev1.ArtifactService_ReadArtifactServer) *sender {
	s := &sender{stream: stream, msgs: make(chan *readMessage), errs: make(chan error, 1)}
	go func() {
		for m := range s.msgs {
			// The codec encodes a readMessage as a ReadArtifactResponse.
			s.errs <- stream.SendMsg(m) // buffered: never blocks once the handler left
		}
	}()
	return s
}

// send hands msg to gRPC and waits until it is accepted. It returns
// DEADLINE_EXCEEDED / READ_STALLED when that takes longer than stall. Its
// chunk buffer is gRPC's from the moment it is handed over; one that was
// not handed over goes back to the pool.
func (s *sender) send(ctx context.Context, msg *readMessage, stall time.Duration) error {
	select {
	case s.msgs <- msg:
	case <-ctx.Done():
		readPool.Put(msg.chunk)
		return status.FromContextError(ctx.Err()).Err()
	}
	t := time.NewTimer(stall)
	defer t.Stop()
	select {
	case err := <-s.errs:
		return err
	case <-t.C:
		return newStatus(codes.DeadlineExceeded,
			fmt.Sprintf("the client took no data for %v: the read was ended", stall), ReasonReadStalled, nil)
	}
}

// stop ends the sending goroutine once it is idle (or, after a stall, once
// the end of the call unblocks it).
func (s *sender) stop() { close(s.msgs) }
