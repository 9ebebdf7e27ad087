package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func TestUploadReadRoundTrip(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	seg := keys.DefaultSegmentSize
	firstPT := seg - 40 - 16
	for _, n := range []int{0, 1, seg - 1, seg, seg + 1, firstPT, firstPT + 1, 5 << 20} {
		for _, declare := range []bool{false, true} {
			data := randomBytes(n, uint64(n))
			h := callHeader("us-west")
			if declare {
				h.SizeBytes = proto.Int64(int64(n))
			}
			a := mustUpload(t, env, ctx, h, data)
			if a.GetSizeBytes() != int64(n) || a.GetState() != sealgatev1.Artifact_STATE_STAGED {
				t.Fatalf("size %d: got size %d state %v, want %d STAGED", n, a.GetSizeBytes(), a.GetState(), n)
			}
			if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
				t.Fatalf("size %d (declared %v): read %d bytes back, not the bytes uploaded", n, declare, len(got))
			}
		}
	}
}

func TestUploadReportsArtifact(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	h := callHeader("de-fra")
	h.Labels = map[string]string{"lang": "de"}
	h.QueueId = "q1"
	a := mustUpload(t, env, ctx, h, []byte("hallo"))
	if !regexp.MustCompile(`^accounts/demo/artifacts/[0-9a-z]{26}-deus$`).MatchString(a.GetName()) {
		t.Errorf("name = %q, want accounts/demo/artifacts/<id>-deus", a.GetName())
	}
	if a.GetStagingRegion() != "de" || a.GetStorageRegion() != "us" {
		t.Errorf("regions = %s -> %s, want de -> us (SIP zone de-fra, demo's home region us)", a.GetStagingRegion(), a.GetStorageRegion())
	}
	if a.GetLabels()["lang"] != "de" || a.GetQueueId() != "q1" || a.GetContentType() != "audio/wav" || a.GetCreateTime() == nil {
		t.Errorf("metadata not reported: %v", a)
	}
	if a.GetKeyMode() != sealgatev1.KeyMode_KEY_MODE_PROVIDER || len(a.GetKeyUris()) != 1 {
		t.Errorf("key mode %v uris %v, want PROVIDER with one key", a.GetKeyMode(), a.GetKeyUris())
	}
	got, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, a) {
		t.Errorf("GetArtifact = %v, want the upload's answer %v", got, a)
	}
}

func TestUploadRejectsBadInputAndStoresNothing(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	cases := []struct {
		name   string
		h      *sealgatev1.UploadHeader
		data   []byte
		code   codes.Code
		reason string
	}{
		{"unknown SIP zone", callHeader("mars-1"), []byte("x"), codes.InvalidArgument, "UNKNOWN_SIP_ZONE"},
		{"no type", &sealgatev1.UploadHeader{SipZone: "us-west"}, []byte("x"), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad label", func() *sealgatev1.UploadHeader {
			h := callHeader("us-west")
			h.Labels = map[string]string{"Bad Key": "v"}
			return h
		}(), []byte("x"), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"more than declared", func() *sealgatev1.UploadHeader {
			h := callHeader("us-west")
			h.SizeBytes = proto.Int64(10)
			return h
		}(), make([]byte, 300<<10), codes.InvalidArgument, "SIZE_MISMATCH"},
		{"fewer than declared", func() *sealgatev1.UploadHeader {
			h := callHeader("us-west")
			h.SizeBytes = proto.Int64(1 << 20)
			return h
		}(), make([]byte, 300<<10), codes.InvalidArgument, "SIZE_MISMATCH"},
	}
	for _, c := range cases {
		_, err := env.Upload(ctx, c.h, bytes.NewReader(c.data), 64<<10)
		wantStatus(t, c.name, err, c.code, c.reason)
	}
	// A header after data, and data before any header.
	stream, _ := env.Artifacts.UploadArtifact(ctx)
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: callHeader("us-west")}})
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 1000)}})
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: callHeader("us-west")}})
	_, err := stream.CloseAndRecv()
	wantStatus(t, "second header", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	stream, _ = env.Artifacts.UploadArtifact(ctx)
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: []byte("x")}})
	_, err = stream.CloseAndRecv()
	wantStatus(t, "chunk first", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	stream, _ = env.Artifacts.UploadArtifact(ctx)
	_, err = stream.CloseAndRecv()
	wantStatus(t, "empty stream", err, codes.InvalidArgument, "INVALID_ARGUMENT")

	if files := objectFiles(t, env.DataDir); len(files) != 0 {
		t.Fatalf("failed uploads left %d objects, want none: %v", len(files), files)
	}
}

func TestCanceledUploadStoresNothing(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx, cancel := context.WithCancel(env.Ctx(t, "demo"))
	stream, err := env.Artifacts.UploadArtifact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: callHeader("us-west")}})
	for i := 0; i < 8; i++ {
		stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 256<<10)}})
	}
	cancel()
	if _, err := stream.CloseAndRecv(); err == nil {
		t.Fatal("canceled upload succeeded")
	}
	// The server notices the cancellation asynchronously: wait until its
	// handler has returned (the interceptor logs the finished call), so
	// the check below sees what the upload left behind, not a folder it
	// has yet to write.
	if !eventually(func() bool {
		l := env.Log.String()
		return strings.Contains(l, "finished call") && strings.Contains(l, "UploadArtifact")
	}) {
		t.Fatalf("the upload's handler never finished; log:\n%s", env.Log.String())
	}
	left := func() []string {
		files := objectFiles(t, env.DataDir)
		for _, d := range []string{"records", "expiry"} {
			filepath.WalkDir(filepath.Join(env.DataDir, "control", d), func(p string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					files = append(files, p)
				}
				return nil
			})
		}
		return files
	}
	if !eventually(func() bool { return len(left()) == 0 }) {
		t.Fatalf("canceled upload left files: %v", left())
	}
}

func TestNoPlaintextAtRestOrInLogs(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	const marker = "CARDHOLDER-4111-1111-1111-1111"
	data := []byte(strings.Repeat("customer said "+marker+" on the call. ", 20000))
	h := callHeader("us-west")
	h.SizeBytes = proto.Int64(int64(len(data)))
	a := mustUpload(t, env, ctx, h, data)
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("round trip failed")
	}
	var files int
	walkFiles(t, env.DataDir, func(path string, b []byte) {
		files++
		if bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte("customer said")) {
			t.Errorf("%s holds plaintext", path)
		}
	})
	if files < 4 {
		t.Fatalf("walked %d files, want the object, keys, settings and token", files)
	}
	if strings.Contains(env.Log.String(), marker) {
		t.Errorf("log holds plaintext")
	}
	if !strings.Contains(env.Log.String(), a.GetName()) {
		t.Errorf("log does not mention the upload at all; the check above proves nothing")
	}
}

func walkFiles(t *testing.T, dir string, fn func(string, []byte)) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			walkFiles(t, p, fn)
			continue
		}
		fn(p, readFile(t, p))
	}
}

func TestIdleUploadIsEndedAndStoresNothing(t *testing.T) {
	// The timing of the progress rules is tested under synctest
	// (progress_test.go); here only what an abandoned upload leaves.
	env := gatewaytest.Start(t, func(c *config.Config) { c.UploadIdleTimeout = 200 * time.Millisecond })
	ctx := env.Ctx(t, "demo")
	stream, err := env.Artifacts.UploadArtifact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: callHeader("us-west")}})
	stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 1000)}})
	// The client goes silent without closing; the gateway ends the call.
	err = stream.RecvMsg(new(sealgatev1.Artifact))
	wantStatus(t, "silent upload", err, codes.DeadlineExceeded, "UPLOAD_IDLE")
	if files := objectFiles(t, env.DataDir); len(files) != 0 {
		t.Fatalf("abandoned upload left %v", files)
	}
	// A client that never sends its header is let go too.
	stream, err = env.Artifacts.UploadArtifact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = stream.RecvMsg(new(sealgatev1.Artifact))
	wantStatus(t, "upload without a header", err, codes.DeadlineExceeded, "UPLOAD_IDLE")
}

func TestHostileInputIsNotEchoedAndCancelsAreNotErrors(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	h := callHeader("us-west")
	h.Labels = map[string]string{strings.Repeat("K", 100<<10): "v"}
	_, err := env.Upload(ctx, h, strings.NewReader("x"), 1)
	st := wantStatus(t, "100 KB label key", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if n := len(st.Message()) + len(fmt.Sprint(st.Details())); n > 2048 {
		t.Fatalf("the error repeats %d bytes of input, want it cut short", n)
	}
	if strings.Contains(env.Log.String(), strings.Repeat("K", 1000)) {
		t.Fatal("the log holds the 100 KB label key")
	}
	// A client that gives up before its header is a cancellation, not an
	// error of the gateway.
	cctx, cancel := context.WithCancel(ctx)
	s, err := env.Artifacts.UploadArtifact(cctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s
	before := len(env.Log.String())
	cancel()
	if !eventually(func() bool { return strings.Contains(env.Log.String()[before:], "UploadArtifact") }) {
		t.Fatal("the cancelled upload was never logged")
	}
	tail := env.Log.String()[before:]
	if strings.Contains(tail, "level=ERROR") || strings.Contains(tail, "Unknown") {
		t.Fatalf("a cancelled upload was logged as an error:\n%s", tail)
	}
}

// TestSmallUploadsUseSmallSegments: an upload that declares a size smaller
// than the configured segment is sealed in the smallest segment that holds
// it (the encrypter allocates two segments per artifact); the header says
// so and the artifact reads back.
func TestSmallUploadsUseSmallSegments(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	cases := []struct {
		n       int
		declare bool
		want    int
	}{
		{4 << 10, true, 64 << 10},
		{0, true, 64 << 10},
		{64<<10 - 56, true, 128 << 10}, // fits only with no room to spare
		{100 << 10, true, 128 << 10},
		{200 << 10, true, keys.DefaultSegmentSize},
		{1 << 20, true, keys.DefaultSegmentSize},
		{4 << 10, false, keys.DefaultSegmentSize},
	}
	for _, c := range cases {
		data := randomBytes(c.n, uint64(c.n)+1)
		h := callHeader("us-west")
		if c.declare {
			h.SizeBytes = proto.Int64(int64(c.n))
		}
		a := mustUpload(t, env, ctx, h, data)
		stored, err := keys.ReadHeader(bytes.NewReader(readFile(t, objectPath(env.DataDir, a))))
		if err != nil {
			t.Fatal(err)
		}
		if stored.SegmentSize != c.want {
			t.Errorf("%d bytes (declared %v): segment %d, want %d", c.n, c.declare, stored.SegmentSize, c.want)
		}
		if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
			t.Errorf("%d bytes (declared %v): read back %d bytes, not the bytes uploaded", c.n, c.declare, len(got))
		}
	}
}
