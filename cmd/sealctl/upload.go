package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// chunkSize is the size of the data messages of an upload.
const chunkSize = 1 << 20

const typePrefix = "ARTIFACT_TYPE_"

// parseArtifactType parses an artifact type given as "CALL_RECORDING" or
// "ARTIFACT_TYPE_CALL_RECORDING", in any case, with "-" for "_". It returns
// an error naming the valid types for anything else, including UNSPECIFIED.
func parseArtifactType(s string) (sealgatev1.ArtifactType, error) {
	v, err := parseEnum(s, typePrefix, sealgatev1.ArtifactType_value)
	if err != nil {
		return 0, err
	}
	return sealgatev1.ArtifactType(v), nil
}

// labelsFlag collects repeated --label k=v flags.
type labelsFlag map[string]string

// String returns the labels as k=v pairs in key order.
func (l labelsFlag) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + l[k]
	}
	return strings.Join(pairs, ",")
}

// Set adds one k=v label. It returns an error when s has no "=", the key is
// empty, or the key was given before.
func (l labelsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if k == "" {
		return fmt.Errorf("empty label key in %q", s)
	}
	if _, dup := l[k]; dup {
		return fmt.Errorf("label %q given twice", k)
	}
	l[k] = v
	return nil
}

// uploadFlags are the flags of `sealctl upload`.
type uploadFlags struct {
	typ         string
	sipZone     string
	queue       string
	engagement  string
	contentType string
	labels      labelsFlag
	progress    progressFlags
}

// buildHeader returns the upload header for the flags, the file being
// uploaded and its size (negative when unknown). The content type defaults
// to the one the file's extension suggests.
func (f *uploadFlags) buildHeader(file string, size int64) (*sealgatev1.UploadHeader, error) {
	if f.typ == "" {
		return nil, errors.New("--type is required")
	}
	t, err := parseArtifactType(f.typ)
	if err != nil {
		return nil, fmt.Errorf("--type: %w", err)
	}
	if f.sipZone == "" {
		return nil, errors.New("--sip-zone is required")
	}
	h := &sealgatev1.UploadHeader{
		Type:         t,
		SipZone:      f.sipZone,
		QueueId:      f.queue,
		EngagementId: f.engagement,
		ContentType:  f.contentType,
	}
	if h.ContentType == "" && file != "-" {
		h.ContentType = mime.TypeByExtension(filepath.Ext(file))
	}
	if len(f.labels) > 0 {
		h.Labels = map[string]string(f.labels)
	}
	if size >= 0 {
		h.SizeBytes = &size
	}
	return h, nil
}

// runUpload implements `sealctl upload`: it streams FILE (or stdin for "-")
// to the gateway and prints the new artifact's name.
func runUpload(ctx context.Context, a *app, args []string) error {
	const cmd = "upload"
	fs, g := a.newFlagSet(cmd, "upload --type TYPE --sip-zone ZONE [--queue Q] [--engagement E] [--content-type T] [--label K=V ...] FILE|-")
	f := &uploadFlags{labels: labelsFlag{}}
	fs.StringVar(&f.typ, "type", "", "artifact `type`, e.g. CALL_RECORDING (required)")
	fs.StringVar(&f.sipZone, "sip-zone", "", "SIP `zone` where the device registered, e.g. us-west (required)")
	fs.StringVar(&f.queue, "queue", "", "queue `id`")
	fs.StringVar(&f.engagement, "engagement", "", "engagement `id`")
	fs.StringVar(&f.contentType, "content-type", "", "MIME `type` of the content (default: from the file extension)")
	fs.Var(f.labels, "label", "label `KEY=VALUE` (repeatable; never personal data)")
	requestID := fs.String("request-id", "", "idempotency `key` of this upload (default: a new UUID; a retry with the same key stores nothing new)")
	retries := fs.Int("retries", 5, "retries of a file upload the gateway answers UNAVAILABLE (`N`)")
	f.progress.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(cmd, "want exactly one FILE (or - for stdin), got %d arguments", len(pos))
	}
	if _, err := f.buildHeader(pos[0], -1); err != nil {
		return usagef(cmd, "%v", err)
	}
	c, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer c.Close()

	in, size, err := openInput(a, pos[0])
	if err != nil {
		return err
	}
	defer in.Close()
	header, err := f.buildHeader(pos[0], size)
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	header.RequestId = *requestID
	if header.RequestId == "" {
		header.RequestId = newUUID()
	}
	// A file can be sent again: retry what the gateway could not take now
	// (a gateway going away, a store down, the first attempt of this
	// request still in progress), with the same request id, so that the
	// upload is stored once whatever happened to the earlier answers.
	seeker, canRetry := in.(io.Seeker)
	var art *sealgatev1.Artifact
	for attempt := 0; ; attempt++ {
		bar := a.newProgress(f.progress, size, "uploading")
		art, err = upload(ctx, c, header, in, bar)
		if err == nil {
			bar.finish()
			break
		}
		bar.abort()
		if !canRetry || attempt >= *retries || status.Code(err) != codes.Unavailable {
			return err
		}
		wait := retryAfter(err, attempt)
		fmt.Fprintf(a.stderr, "sealctl: %v; retrying in %v\n", status.Convert(err).Message(), wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if _, err := seeker.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(a.stdout, art.GetName())
	return err
}

// openInput opens FILE, or stdin for "-", and returns its size when it is a
// regular file and -1 otherwise.
func openInput(a *app, file string) (io.ReadCloser, int64, error) {
	if file == "-" {
		size := int64(-1)
		if f, ok := a.stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size = fi.Size()
			}
		}
		return io.NopCloser(a.stdin), size, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a directory", file)
	}
	size := int64(-1)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, nil
}

// upload sends header and then the content of r in chunks of chunkSize,
// and returns the artifact the gateway acknowledged. It returns the call's
// gRPC status error, or the local read error after cancelling the call, so
// the gateway discards what it received.
func upload(ctx context.Context, c *client, header *sealgatev1.UploadHeader, r io.Reader, bar *progress) (*sealgatev1.Artifact, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.artifacts.UploadArtifact(ctx)
	if err != nil {
		return nil, err
	}
	// send sends m; when the gateway has already ended the call (io.EOF)
	// it returns the call's outcome: its error, or the artifact when the
	// gateway answered early (a retry of a stored request).
	var answered *sealgatev1.Artifact
	send := func(m *sealgatev1.UploadArtifactRequest) error {
		err := stream.Send(m)
		if errors.Is(err, io.EOF) {
			answered, err = stream.CloseAndRecv()
			if err == nil {
				return errAnswered
			}
		}
		return err
	}
	err = send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: header}})
	for err == nil {
		// A fresh buffer per message: gRPC may still hold the previous one.
		buf := make([]byte, chunkSize)
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err = send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				break
			}
			bar.add(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			cancel()
			return nil, fmt.Errorf("read input: %w", rerr)
		}
	}
	if errors.Is(err, errAnswered) {
		return answered, nil
	}
	if err != nil {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// errAnswered means the gateway answered before the upload was sent whole.
var errAnswered = errors.New("answered early")

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// retryAfter is the wait before retry attempt+1: the gateway's RetryInfo
// delay when it gave one, else 0.5 s doubling up to 8 s.
func retryAfter(err error, attempt int) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return min(ri.GetRetryDelay().AsDuration(), time.Minute)
		}
	}
	return min(500*time.Millisecond<<attempt, 8*time.Second)
}
