package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/chunks"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/gateway/privacy/redact"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// uploadPlan is everything decided before the first content byte arrives.
type uploadPlan struct {
	ref      layout.Ref
	header   *sealgatev1.UploadHeader
	bucket   store.Bucket
	sealer   *keys.Sealer
	declared int64 // -1 when the client did not declare a size
	// record holds the external share of the data key; it is written (with
	// the expiry index entry) while the content streams, and must be
	// durable before the upload is acknowledged.
	record   *lifecycle.Record
	category string
	// redactor rewrites text before it is encrypted; rules refuse content
	// that matches a blocking rule. Either may be nil.
	redactor *textTransform
	rules    []blockRule
	// audio is set for a recording that will be redacted: it must be a WAV
	// file the redactor can silence.
	audio bool
}

// UploadArtifact receives a header and then chunks, encrypts them as they
// arrive and writes the ciphertext to the staging area of the SIP zone's
// region. It answers only once the object is durable; on any failure nothing
// is left in the store. Memory per stream is bounded by one chunk and one
// segment, whatever the artifact's size.
func (s *artifactService) UploadArtifact(stream sealgatev1.ArtifactService_UploadArtifactServer) error {
	g := s.g
	ctx := stream.Context()
	p, err := g.require(ctx, auth.RoleUploader)
	if err != nil {
		return err
	}
	next := g.receiver(stream)
	defer next.stop()
	first, err := next.recv(ctx)
	if errors.Is(err, io.EOF) || (err == nil && first.GetHeader() == nil) {
		return invalidArgument("header", "the first message of an upload must be its header", ReasonInvalidArgument)
	}
	if err != nil {
		return g.toStatus(ctx, "upload", err)
	}
	release, err := g.limits.Stream(limits.Upload, p.Account, p.Subject, uploadMemory(first.GetHeader(), g.cfg.SegmentSize))
	if err != nil {
		return g.toStatus(ctx, "upload", err)
	}
	defer release()
	plan, err := g.planUpload(ctx, p.Account, first.GetHeader())
	if err != nil {
		st := g.toStatus(ctx, "upload", err)
		g.metrics.Uploads.WithLabelValues(outcome(err)).Inc()
		g.record(ctx, audit.KindUpload, p.Account, "", nil, st)
		return st
	}
	if mem := plan.redactor.memory(plan.declared); mem > 0 {
		more, err := g.limits.Memory(p.Account, mem)
		if err != nil {
			st := g.toStatus(ctx, "upload", err)
			g.metrics.Uploads.WithLabelValues(outcome(err)).Inc()
			g.record(ctx, audit.KindUpload, p.Account, "", nil, st)
			return st
		}
		defer more()
	}
	h := plan.sealer.Header()
	var claim *requestClaim
	if plan.header.GetRequestId() != "" && g.cfg.Lifecycle != nil {
		c, prior, err := g.claimRequest(ctx, plan)
		if err != nil {
			st := g.toStatus(ctx, "upload", err)
			g.metrics.Uploads.WithLabelValues(outcome(err)).Inc()
			g.record(ctx, audit.KindUpload, p.Account, "", nil, st)
			return st
		}
		if prior != nil {
			// A retry of a stored upload: its first artifact is the answer.
			g.metrics.Uploads.WithLabelValues(outcome(nil)).Inc()
			g.log.InfoContext(ctx, "upload retried: answered with the first attempt's artifact", "artifact", prior.GetName())
			return stream.SendAndClose(prior)
		}
		claim = c
		defer claim.release()
	}
	registered := g.register(ctx, plan)
	size, err := g.writeUpload(ctx, plan, next)
	if rerr := <-registered; err == nil && rerr != nil {
		err = rerr
	}
	if err == nil {
		// A transcript's spans must be durable before it is acknowledged:
		// its engagement's recordings wait for them.
		err = g.saveSpans(ctx, plan)
	}
	if err == nil {
		if herr := g.uploadStep(UploadStepWritten, plan.ref); herr != nil {
			return herr // a simulated crash: nothing is cleaned up
		}
	}
	if err == nil && claim != nil {
		// The request is this artifact's from here on, even if the answer
		// is lost.
		if err = claim.complete(ctx); err == nil {
			if herr := g.uploadStep(UploadStepStored, plan.ref); herr != nil {
				return herr
			}
			if serr := claim.settle(ctx); serr != nil {
				// Stored and the request's: nothing is removed, and a
				// retry is answered with it.
				g.metrics.Uploads.WithLabelValues(outcome(serr)).Inc()
				g.record(ctx, audit.KindUpload, p.Account, plan.ref.Name(), h.KeyURIs(), serr)
				return serr
			}
		}
	}
	if err != nil {
		g.abandon(plan)
	}
	g.metrics.Uploads.WithLabelValues(outcome(err)).Inc()
	var blocked *errBlocked
	if errors.As(err, &blocked) {
		return g.refuseBlocked(ctx, p, plan, blocked.rule)
	}
	if err != nil {
		g.log.InfoContext(ctx, "upload failed", "artifact", plan.ref.Name(), "err", err)
		st := g.toStatus(ctx, "upload", err)
		g.record(ctx, audit.KindUpload, p.Account, plan.ref.Name(), h.KeyURIs(), st)
		return st
	}
	g.record(ctx, audit.KindUpload, p.Account, plan.ref.Name(), h.KeyURIs(), nil)
	if g.cfg.OnStaged != nil {
		g.cfg.OnStaged()
	}
	g.log.InfoContext(ctx, "artifact staged", "artifact", plan.ref.Name(), "size", size,
		"staging_region", plan.ref.Staging, "storage_region", plan.ref.Storage, "key_mode", h.Mode.String())
	a := artifactFromHeader(plan.ref, h, size, sealgatev1.Artifact_STATE_STAGED)
	if plan.audio {
		a.RedactionState = sealgatev1.Artifact_REDACTION_STATE_PENDING
	}
	return stream.SendAndClose(a)
}

// uploadMemory is the most an upload holds in buffers: a received chunk,
// the encrypter's segment buffers and the store client's chunk buffers.
// The chunk is counted at the largest message whatever size the header
// declares: gRPC receives and the codec decodes a whole message before the
// upload can compare it with the declared size, so a client that declares
// 4 KiB and sends 4 MiB holds 4 MiB until it is refused.
func uploadMemory(h *sealgatev1.UploadHeader, configured int) int64 {
	return int64(MaxRecvMsgSize) + 2*int64(uploadSegment(h, configured)) + 256<<10
}

// segmentSlack covers what the first segment of a body holds besides
// plaintext (the stream header and the tag) with room to spare.
const segmentSlack = 1 << 10

// uploadSegment is the segment size of a new artifact's body: the
// configured one (0: keys.DefaultSegmentSize) or, for an upload that
// declares a smaller size, the smallest power of two from
// keys.MinSegmentSize that holds it in one segment. The encrypter
// allocates and zeroes two buffers of a segment for every artifact, which
// for a 4 KiB upload in 256 KiB segments was about 6% of the gateway's CPU;
// the size is in the header, so readers follow it.
func uploadSegment(h *sealgatev1.UploadHeader, configured int) int {
	if configured == 0 {
		configured = keys.DefaultSegmentSize
	}
	if h.SizeBytes == nil || h.GetSizeBytes() < 0 {
		return configured
	}
	seg := keys.MinSegmentSize
	for seg < configured && int64(seg) < h.GetSizeBytes()+segmentSlack {
		seg *= 2
	}
	return min(seg, configured)
}

// planUpload validates the header, resolves regions and keys, and wraps a
// fresh data key for the new artifact.
func (g *Gateway) planUpload(ctx context.Context, account string, h *sealgatev1.UploadHeader) (*uploadPlan, error) {
	if err := validateUploadHeader(h); err != nil {
		return nil, err
	}
	staging, err := g.cfg.Topology.ZoneRegion(h.GetSipZone())
	if err != nil {
		return nil, err
	}
	settings, err := g.cfg.Settings.Get(ctx, account)
	if err != nil {
		return nil, err
	}
	storage := policy.StorageRegion(settings, h.GetType(), h.GetQueueId())
	if _, err := g.cfg.Topology.Bucket(storage); err != nil {
		return nil, err
	}
	bucket, err := g.cfg.Topology.Bucket(staging)
	if err != nil {
		return nil, err
	}
	mode, wrappers, err := g.keysFor(ctx, account, settings.GetKeyPolicy())
	if err != nil {
		return nil, err
	}
	now := g.now()
	id, err := layout.NewArtifactID(now, staging, storage)
	if err != nil {
		return nil, err
	}
	ref := layout.Ref{Account: account, ID: id, Staging: staging, Storage: storage}
	var ext *lifecycle.ExternalShare
	if g.cfg.Lifecycle != nil {
		ext = &lifecycle.ExternalShare{}
		wrappers = append(wrappers, ext)
	}
	sealer, err := keys.NewSealer(ctx, keys.SealParams{
		Context:     encryptionContext(account, id, h.GetType(), storage),
		Metadata:    headerMetadata(h, now, expireTime(settings, h.GetType(), now)),
		Mode:        mode,
		Wrappers:    wrappers,
		SegmentSize: uploadSegment(h, g.cfg.SegmentSize),
	})
	if err != nil {
		return nil, err
	}
	declared := int64(-1)
	if h.SizeBytes != nil {
		declared = h.GetSizeBytes()
	}
	redactor, err := redaction(settings, h.GetType(), h.GetContentType())
	if err != nil {
		return nil, err
	}
	kind, err := audioRedaction(settings, h)
	if err != nil {
		return nil, err
	}
	plan := &uploadPlan{ref: ref, header: h, bucket: bucket, sealer: sealer, declared: declared, category: policy.TypeCategory(h.GetType()),
		redactor: redactor, rules: g.blockRules(account, settings, h.GetType())}
	if ext != nil {
		plan.record = ext.Record(plan.category, h.GetEngagementId(), now)
		if kind != "" {
			// Stored as it comes, pending: the redactor silences it once
			// its transcript says when personal data was said.
			plan.record.Redaction = &lifecycle.Redaction{Pending: true, Kind: kind}
			plan.audio = true
		}
	}
	return plan, nil
}

// encryptionContext is what every data key and body of an artifact is bound
// to; it also goes to the customer's KMS audit log.
func encryptionContext(account, id string, t sealgatev1.ArtifactType, storage string) keys.EncryptionContext {
	return keys.EncryptionContext{
		keys.ContextAccount:  account,
		keys.ContextArtifact: id,
		keys.ContextType:     policy.TypeName(t),
		keys.ContextRegion:   storage,
	}
}

// keyURIsFor returns the key mode and the KEK URIs that protect new data keys
// under kp: customer first, then provider.
func (g *Gateway) keyURIsFor(kp *sealgatev1.KeyPolicy) (keys.Mode, []string) {
	switch kp.GetMode() {
	case sealgatev1.KeyMode_KEY_MODE_CUSTOMER:
		return keys.ModeCustomer, []string{kp.GetCustomerKeyUri()}
	case sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER:
		return keys.ModeCustomerAndProvider, []string{kp.GetCustomerKeyUri(), g.cfg.ProviderKeyURI}
	}
	return keys.ModeProvider, []string{g.cfg.ProviderKeyURI}
}

// keysFor returns the key mode and the share wrappers for new data keys under
// kp. Shares are sealed through the key cache's intermediate keys, so a KEK
// is called about once per revocation bound per account, not per upload.
func (g *Gateway) keysFor(ctx context.Context, account string, kp *sealgatev1.KeyPolicy) (keys.Mode, []keys.ShareWrapper, error) {
	if err := g.checkCustomerKey(account, kp); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", keys.ErrKeyNotAllowed, err)
	}
	mode, uris := g.keyURIsFor(kp)
	wrappers := make([]keys.ShareWrapper, 0, len(uris))
	for _, uri := range uris {
		if _, err := g.cfg.Keyring.Wrapper(ctx, uri); err != nil {
			if errors.Is(err, keys.ErrUnknownKey) {
				// A configured key the gateway cannot serve is a revoked key
				// from the customer's point of view: uploads must stop.
				return 0, nil, fmt.Errorf("%w: %v", keys.ErrKeyRevoked, err)
			}
			return 0, nil, err
		}
		wrappers = append(wrappers, g.cfg.Keys.For(uri))
	}
	return mode, wrappers, nil
}

// writeUpload streams the chunks through the sealer into the staging bucket
// and returns the plaintext size. Nothing is allocated and no store write
// begins before the first chunk (or the end of an empty upload) arrives: an
// upload that goes quiet after its header holds only its header.
func (g *Gateway) writeUpload(ctx context.Context, plan *uploadPlan, next *receiver) (int64, error) {
	msg, err := next.recv(ctx)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	size := int64(-1)
	if plan.declared >= 0 && plan.redactor == nil {
		size = plan.sealer.Header().ObjectSize(plan.declared)
	}
	// The encrypter hands each ciphertext segment straight to the store
	// client, which copies it out of the segment buffer (io.Pipe: a Write
	// waits until it is read). A pipe with blocks of its own let encryption
	// run ahead, at the cost of a second copy of every byte; encryption is
	// fast enough (about 0.2 s per GiB) that waiting costs less
	// (docs/performance.md).
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		err := plan.bucket.Put(ctx, plan.ref.StagingKey(), pr, size)
		pr.Close()
		putDone <- err
	}()
	// abort ends the Put with cause and returns the Put's own error if it
	// failed first (a store error explains a broken pipe better).
	abort := func(cause error) error {
		pw.CloseWithError(cause)
		if perr := <-putDone; perr != nil && errors.Is(cause, io.ErrClosedPipe) {
			return perr
		}
		return cause
	}
	enc, eerr := plan.sealer.Encrypt(pw)
	if eerr != nil {
		return 0, abort(eerr)
	}
	// Content flows: blocking scan, then redaction, then encryption.
	var sink io.Writer = enc
	var redacted io.WriteCloser
	stored := &countWriter{w: enc}
	if plan.redactor != nil {
		redacted = plan.redactor.writer(stored)
		if plan.declared < 0 {
			// Reserved at the header: the bytes; here: the parse.
			account := plan.ref.Account
			redact.SetReserve(redacted, func(n int64) (func(), error) { return g.limits.Memory(account, n) })
		}
		sink = redacted
	}
	if len(plan.rules) > 0 {
		sink = newBlockWriter(ctx, sink, plan.rules, g.limits, plan.ref.Account)
	}
	var probe *wavProbe
	if plan.audio {
		probe = &wavProbe{dst: sink}
		sink = probe
	}
	var n int64
	for ; err == nil; msg, err = next.recv(ctx) {
		if msg.GetHeader() != nil {
			return 0, abort(invalidArgument("header", "only the first message may be a header", ReasonInvalidArgument))
		}
		chunk := msg.GetChunk()
		n += int64(len(chunk))
		if plan.declared >= 0 && n > plan.declared {
			return 0, abort(sizeMismatch(plan.declared, n, "more"))
		}
		_, werr := sink.Write(chunk)
		chunks.Release(chunk) // the sealer has copied it
		if werr != nil {
			return 0, abort(redactionError(werr))
		}
	}
	if !errors.Is(err, io.EOF) {
		return 0, abort(err)
	}
	if plan.declared >= 0 && n != plan.declared {
		return 0, abort(sizeMismatch(plan.declared, n, "fewer"))
	}
	if probe != nil {
		if err := probe.close(); err != nil {
			return 0, abort(err)
		}
	}
	if redacted != nil {
		if err := redacted.Close(); err != nil {
			return 0, abort(redactionError(err))
		}
		n = stored.n // what was stored: the redacted text
	}
	if err := enc.Close(); err != nil {
		return 0, abort(err)
	}
	pw.Close()
	if err := <-putDone; err != nil {
		return 0, err
	}
	return n, nil
}

func sizeMismatch(declared, got int64, dir string) error {
	return newStatus(codes.InvalidArgument,
		fmt.Sprintf("header.size_bytes: declared %d bytes, received %s (%d)", declared, dir, got),
		ReasonSizeMismatch, nil)
}

// Upload progress defaults: an upload may go without a message for
// defaultUploadIdle, must average defaultUploadMinRate bytes per second over
// each defaultUploadRateWindow (a live G.711 call sends 8 KB/s, compressed
// voice 2-4 KB/s), and may last defaultUploadMaxDuration in all.
const (
	defaultUploadIdle        = 2 * time.Minute
	defaultUploadMinRate     = 1 << 10
	defaultUploadRateWindow  = time.Minute
	defaultUploadMaxDuration = 12 * time.Hour
)

// progressRules are the limits an upload's stream must keep to.
type progressRules struct {
	idle        time.Duration
	minRate     int64
	window      time.Duration
	maxDuration time.Duration
}

func (g *Gateway) progressRules() progressRules {
	r := progressRules{idle: g.cfg.UploadIdleTimeout, minRate: g.cfg.UploadMinRate,
		window: g.cfg.UploadRateWindow, maxDuration: g.cfg.UploadMaxDuration}
	if r.idle <= 0 {
		r.idle = defaultUploadIdle
	}
	if r.minRate <= 0 {
		r.minRate = defaultUploadMinRate
	}
	if r.window <= 0 {
		r.window = defaultUploadRateWindow
	}
	if r.maxDuration <= 0 {
		r.maxDuration = defaultUploadMaxDuration
	}
	return r
}

// msgSource is what a receiver reads: an upload stream.
type msgSource interface {
	Recv() (*sealgatev1.UploadArtifactRequest, error)
}

// receiver reads an upload stream in its own goroutine, one message ahead,
// so that the handler can give up on a client that does not make progress:
// a stream silent for the idle timeout, slower than the minimum rate over a
// window, or older than the maximum duration is ended and stores nothing.
type receiver struct {
	msgs chan received
	// want asks the goroutine for the next message: it receives only when
	// asked, so an upload holds one decoded message at a time (the one
	// its handler works on), as uploadMemory counts.
	want    chan struct{}
	pending bool // asked and not answered yet
	done    chan struct{}
	rules   progressRules

	start       time.Time
	windowStart time.Time
	windowBytes int64
}

type received struct {
	msg *sealgatev1.UploadArtifactRequest
	err error
}

func (g *Gateway) receiver(stream msgSource) *receiver {
	return newReceiver(stream, g.progressRules())
}

func newReceiver(stream msgSource, rules progressRules) *receiver {
	now := time.Now()
	r := &receiver{msgs: make(chan received), want: make(chan struct{}), done: make(chan struct{}), rules: rules, start: now, windowStart: now}
	go func() {
		for {
			select {
			case <-r.want:
			case <-r.done:
				return
			}
			msg, err := stream.Recv()
			select {
			case r.msgs <- received{msg, err}:
			case <-r.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// recv returns the next message, or an error once the stream breaks a
// progress rule: DEADLINE_EXCEEDED with reason UPLOAD_IDLE or
// UPLOAD_TOO_SLOW.
func (r *receiver) recv(ctx context.Context) (*sealgatev1.UploadArtifactRequest, error) {
	wait := r.rules.idle
	if left := time.Until(r.start.Add(r.rules.maxDuration)); left < wait {
		wait = max(left, 0)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	if !r.pending {
		select {
		case r.want <- struct{}{}:
			r.pending = true
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case m := <-r.msgs:
		r.pending = false
		if m.err == nil {
			if err := r.progress(int64(len(m.msg.GetChunk()))); err != nil {
				return nil, err
			}
		}
		return m.msg, m.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		if time.Since(r.start) >= r.rules.maxDuration {
			return nil, r.tooSlow(fmt.Sprintf("the upload ran longer than %v", r.rules.maxDuration))
		}
		return nil, newStatus(codes.DeadlineExceeded,
			fmt.Sprintf("no upload message for %v: the upload was abandoned", r.rules.idle), ReasonUploadIdle, nil)
	}
}

// progress counts n received bytes and checks the rate of each window that
// has ended: a client that sends a byte now and then is not an upload.
func (r *receiver) progress(n int64) error {
	r.windowBytes += n
	now := time.Now()
	if now.Sub(r.start) >= r.rules.maxDuration {
		return r.tooSlow(fmt.Sprintf("the upload ran longer than %v", r.rules.maxDuration))
	}
	elapsed := now.Sub(r.windowStart)
	if elapsed < r.rules.window {
		return nil
	}
	if want := int64(float64(r.rules.minRate) * elapsed.Seconds()); r.windowBytes < want {
		return r.tooSlow(fmt.Sprintf("the upload sent %d bytes in %v, below the minimum of %d bytes per second",
			r.windowBytes, elapsed.Round(time.Second), r.rules.minRate))
	}
	r.windowStart, r.windowBytes = now, 0
	return nil
}

func (r *receiver) tooSlow(msg string) error {
	return newStatus(codes.DeadlineExceeded, msg, ReasonUploadTooSlow, nil)
}

// stop ends the receiving goroutine once the handler no longer reads.
func (r *receiver) stop() { close(r.done) }

// register writes a new artifact's record (the external share of its data
// key) and its expiry index entry, in parallel with the content; the channel
// gives the result.
func (g *Gateway) register(ctx context.Context, plan *uploadPlan) <-chan error {
	done := make(chan error, 1)
	if plan.record == nil {
		done <- nil
		return done
	}
	go func() {
		// The expiry entry is written beside the record, not after it: an
		// entry is due only at the end of retention, long after the
		// record exists (and one whose record never came is purged by the
		// sweeper). The redaction entries wait for the record: the
		// redactor takes an entry without a record for a purged artifact.
		expiry := make(chan error, 1)
		go func() { expiry <- g.cfg.Lifecycle.IndexExpiry(ctx, plan.ref, plan.category) }()
		err := g.cfg.Lifecycle.Create(ctx, plan.ref, plan.record)
		if eerr := <-expiry; err == nil {
			err = eerr
		}
		if err == nil && plan.record.Redaction != nil {
			err = g.cfg.Lifecycle.IndexRedaction(ctx, plan.ref)
			if err == nil {
				err = g.cfg.Lifecycle.IndexRecording(ctx, plan.ref, plan.record.Engagement, plan.record.Redaction.Kind)
			}
		}
		done <- err
	}()
	return done
}

// Upload steps, for crash tests (SEALGATE_UPLOAD_PAUSE_AT): written (the
// object and its record are durable, the request not yet marked stored)
// and stored (the request marked, the answer not yet sent).
const (
	UploadStepWritten = "upload-written"
	UploadStepStored  = "upload-stored"
)

// SetUploadHook sets a hook called at each upload step. An error it
// returns ends the upload there as a crash would: with that error and
// nothing cleaned up (for tests).
func (g *Gateway) SetUploadHook(h func(step string, ref layout.Ref) error) { g.uploadHook = h }

func (g *Gateway) uploadStep(step string, ref layout.Ref) error {
	if g.uploadHook == nil {
		return nil
	}
	return g.uploadHook(step, ref)
}
