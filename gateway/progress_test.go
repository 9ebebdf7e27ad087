package gateway

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// scripted is an upload stream that sends chunks of the given sizes, each
// after its delay, then ends.
type scripted struct {
	steps []step
	quit  chan struct{} // closed when the call ends
}

func newScripted(steps []step) *scripted { return &scripted{steps: steps, quit: make(chan struct{})} }

// end ends the call, as gRPC does once the handler returns.
func (s *scripted) end() { close(s.quit) }

type step struct {
	after time.Duration
	n     int
}

func (s *scripted) Recv() (*sealgatev1.UploadArtifactRequest, error) {
	if len(s.steps) == 0 {
		return nil, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	select {
	case <-time.After(st.after):
	case <-s.quit:
		return nil, status.Error(codes.Canceled, "call ended")
	}
	return &sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, st.n)}}, nil
}

// drain reads r until an error and returns it with the bytes received.
func drain(r *receiver) (int, error) {
	n := 0
	for {
		m, err := r.recv(context.Background())
		if err != nil {
			return n, err
		}
		n += len(m.GetChunk())
	}
}

func reason(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	return st.Code(), errorReasonOf(err)
}

var rules = progressRules{idle: 2 * time.Minute, minRate: 1024, window: time.Minute, maxDuration: time.Hour}

func TestReceiverEndsAnUploadThatTrickles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One byte every 100 s never trips the 2-minute idle timeout, but is
		// far below 1 KiB/s over a minute.
		var steps []step
		for range 1000 {
			steps = append(steps, step{100 * time.Second, 1})
		}
		start := time.Now()
		src := newScripted(steps)
		r := newReceiver(src, rules)
		defer src.end()
		defer r.stop()
		n, err := drain(r)
		if code, rsn := reason(err); code != codes.DeadlineExceeded || rsn != ReasonUploadTooSlow {
			t.Fatalf("trickling upload: got %v, want DEADLINE_EXCEEDED/%s", err, ReasonUploadTooSlow)
		}
		if took := time.Since(start); n > 2 || took > 201*time.Second {
			t.Fatalf("trickling upload ended after %v and %d bytes, want at the first message past one window", took, n)
		}
	})
}

func TestReceiverKeepsAnUploadThatKeepsTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A live call: 8 KB every second for 30 minutes, then the end.
		var steps []step
		for range 1800 {
			steps = append(steps, step{time.Second, 8000})
		}
		src := newScripted(steps)
		r := newReceiver(src, rules)
		defer src.end()
		defer r.stop()
		n, err := drain(r)
		if !errors.Is(err, io.EOF) || n != 1800*8000 {
			t.Fatalf("steady upload: got %d bytes and %v, want all of it and EOF", n, err)
		}
	})
}

func TestReceiverIdleAndMaxDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newScripted([]step{{time.Second, 10}, {3 * time.Minute, 10}})
		r := newReceiver(src, rules)
		defer src.end()
		defer r.stop()
		start := time.Now()
		_, err := drain(r)
		if code, rsn := reason(err); code != codes.DeadlineExceeded || rsn != ReasonUploadIdle {
			t.Fatalf("silent upload: got %v, want DEADLINE_EXCEEDED/%s", err, ReasonUploadIdle)
		}
		if took := time.Since(start); took != time.Second+rules.idle {
			t.Fatalf("silent upload ended after %v, want exactly the idle timeout after its last message (%v)", took, time.Second+rules.idle)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		var steps []step
		for range 10000 {
			steps = append(steps, step{time.Second, 64 << 10})
		}
		short := rules
		short.maxDuration = 10 * time.Minute
		src := newScripted(steps)
		r := newReceiver(src, short)
		defer src.end()
		defer r.stop()
		start := time.Now()
		_, err := drain(r)
		if code, rsn := reason(err); code != codes.DeadlineExceeded || rsn != ReasonUploadTooSlow {
			t.Fatalf("endless upload: got %v, want DEADLINE_EXCEEDED/%s", err, ReasonUploadTooSlow)
		}
		if took := time.Since(start); took != short.maxDuration {
			t.Fatalf("endless upload ended after %v, want the maximum duration %v", took, short.maxDuration)
		}
	})
}

// blockedStream is a read stream whose client never takes anything: Send
// blocks until the call ends.
type blockedStream struct {
	sealgatev1.ArtifactService_ReadArtifactServer
	ctx   context.Context
	sends int
}

func (b *blockedStream) SendMsg(any) error {
	b.sends++
	if b.sends == 1 {
		return nil // the first message fits the client's window
	}
	<-b.ctx.Done()
	return status.Error(codes.Canceled, "stream ended")
}

func TestSenderEndsAStalledRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &Gateway{cfg: Config{ReadStallTimeout: 2 * time.Minute}}
		ctx, endCall := context.WithCancel(context.Background())
		s := g.newSender(&blockedStream{ctx: ctx})
		msg := func() *readMessage { b := []byte("x"); return &readMessage{chunk: &b} }
		if err := s.send(ctx, msg(), g.readStall()); err != nil {
			t.Fatalf("first message: %v", err)
		}
		start := time.Now()
		err := s.send(ctx, msg(), g.readStall())
		if code, rsn := reason(err); code != codes.DeadlineExceeded || rsn != ReasonReadStalled {
			t.Fatalf("stalled read: got %v, want DEADLINE_EXCEEDED/%s", err, ReasonReadStalled)
		}
		if took := time.Since(start); took != 2*time.Minute {
			t.Fatalf("stalled read ended after %v, want the stall timeout", took)
		}
		// The end of the call unblocks the sending goroutine, which exits;
		// synctest fails the test if it is left behind.
		s.stop()
		endCall()
		synctest.Wait()
	})
}
