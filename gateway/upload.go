package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// uploadPlan is everything decided before the first content byte arrives.
type uploadPlan struct {
	ref      artifactRef
	header   *sealgatev1.UploadHeader
	bucket   store.Bucket
	sealer   *keys.Sealer
	declared int64 // -1 when the client did not declare a size
}

// UploadArtifact receives a header and then chunks, encrypts them as they
// arrive and writes the ciphertext to the staging area of the SIP zone's
// region. It answers only once the object is durable; on any failure nothing
// is left in the store. Memory per stream is bounded by one chunk and one
// segment, whatever the artifact's size.
func (s *artifactService) UploadArtifact(stream sealgatev1.ArtifactService_UploadArtifactServer) error {
	g := s.g
	ctx := stream.Context()
	p, err := auth.Require(ctx, auth.RoleUploader)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) || (err == nil && first.GetHeader() == nil) {
		return invalidArgument("header", "the first message of an upload must be its header", ReasonInvalidArgument)
	}
	if err != nil {
		return err
	}
	plan, err := g.planUpload(ctx, p.Account, first.GetHeader())
	if err != nil {
		return g.toStatus(ctx, "upload", err)
	}
	size, err := g.writeUpload(ctx, plan, stream)
	if err != nil {
		g.log.InfoContext(ctx, "upload failed", "artifact", plan.ref.name(), "err", err)
		return g.toStatus(ctx, "upload", err)
	}
	h := plan.sealer.Header()
	g.log.InfoContext(ctx, "artifact staged", "artifact", plan.ref.name(), "size", size,
		"staging_region", plan.ref.Staging, "storage_region", plan.ref.Storage, "key_mode", h.Mode.String())
	return stream.SendAndClose(artifactFromHeader(plan.ref, h, size, sealgatev1.Artifact_STATE_STAGED))
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
	mode, keks, err := g.keysFor(ctx, settings.GetKeyPolicy())
	if err != nil {
		return nil, err
	}
	now := g.now()
	id, err := newArtifactID(now, staging, storage)
	if err != nil {
		return nil, err
	}
	ref := artifactRef{Account: account, ID: id, Staging: staging, Storage: storage}
	sealer, err := keys.NewSealer(ctx, keys.SealParams{
		Context:     encryptionContext(account, id, h.GetType(), storage),
		Metadata:    headerMetadata(h, now, expireTime(settings, h.GetType(), now)),
		Mode:        mode,
		KEKs:        keks,
		SegmentSize: g.cfg.SegmentSize,
	})
	if err != nil {
		return nil, err
	}
	declared := int64(-1)
	if h.SizeBytes != nil {
		declared = h.GetSizeBytes()
	}
	return &uploadPlan{ref: ref, header: h, bucket: bucket, sealer: sealer, declared: declared}, nil
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

// keysFor returns the key mode and the KEKs that wrap new data keys under kp.
func (g *Gateway) keysFor(ctx context.Context, kp *sealgatev1.KeyPolicy) (keys.Mode, []keys.Wrapper, error) {
	provider := func() (keys.Wrapper, error) { return g.cfg.Keyring.Wrapper(ctx, g.cfg.ProviderKeyURI) }
	customer := func() (keys.Wrapper, error) { return g.cfg.Keyring.Wrapper(ctx, kp.GetCustomerKeyUri()) }
	var opens []func() (keys.Wrapper, error)
	mode := keys.ModeProvider
	switch kp.GetMode() {
	case sealgatev1.KeyMode_KEY_MODE_CUSTOMER:
		mode, opens = keys.ModeCustomer, append(opens, customer)
	case sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER:
		mode, opens = keys.ModeCustomerAndProvider, append(opens, customer, provider)
	default:
		opens = append(opens, provider)
	}
	keks := make([]keys.Wrapper, 0, len(opens))
	for _, open := range opens {
		w, err := open()
		if errors.Is(err, keys.ErrUnknownKey) {
			// A configured key the gateway cannot serve is a revoked key from
			// the customer's point of view: uploads must stop.
			return 0, nil, fmt.Errorf("%w: %v", keys.ErrKeyRevoked, err)
		}
		if err != nil {
			return 0, nil, err
		}
		keks = append(keks, w)
	}
	return mode, keks, nil
}

// writeUpload streams the chunks through the sealer into the staging bucket
// and returns the plaintext size.
func (g *Gateway) writeUpload(ctx context.Context, plan *uploadPlan, stream sealgatev1.ArtifactService_UploadArtifactServer) (int64, error) {
	size := int64(-1)
	if plan.declared >= 0 {
		size = plan.sealer.Header().ObjectSize(plan.declared)
	}
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		err := plan.bucket.Put(ctx, plan.ref.stagingKey(), pr, size)
		pr.CloseWithError(errPutEnded)
		putDone <- err
	}()
	// abort ends the Put with cause and returns the Put's own error if it
	// failed first (a store error explains a broken pipe better).
	abort := func(cause error) error {
		pw.CloseWithError(cause)
		if perr := <-putDone; perr != nil && errors.Is(cause, errPutEnded) {
			return perr
		}
		return cause
	}
	enc, err := plan.sealer.Encrypt(pw)
	if err != nil {
		return 0, abort(err)
	}
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, abort(err)
		}
		if msg.GetHeader() != nil {
			return 0, abort(invalidArgument("header", "only the first message may be a header", ReasonInvalidArgument))
		}
		chunk := msg.GetChunk()
		n += int64(len(chunk))
		if plan.declared >= 0 && n > plan.declared {
			return 0, abort(sizeMismatch(plan.declared, n, "more"))
		}
		if _, err := enc.Write(chunk); err != nil {
			return 0, abort(pipeCause(err))
		}
	}
	if plan.declared >= 0 && n != plan.declared {
		return 0, abort(sizeMismatch(plan.declared, n, "fewer"))
	}
	if err := enc.Close(); err != nil {
		return 0, abort(pipeCause(err))
	}
	pw.Close()
	if err := <-putDone; err != nil {
		return 0, err
	}
	return n, nil
}

var errPutEnded = errors.New("gateway: store write ended")

// pipeCause maps a write error on the pipe to errPutEnded so abort reports the
// store's error.
func pipeCause(err error) error {
	if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, errPutEnded) {
		return errPutEnded
	}
	return err
}

func sizeMismatch(declared, got int64, dir string) error {
	return newStatus(codes.InvalidArgument,
		fmt.Sprintf("header.size_bytes: declared %d bytes, received %s (%d)", declared, dir, got),
		ReasonSizeMismatch, nil)
}
