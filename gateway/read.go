package gateway

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// Read message sizes. A read starts with small messages and doubles them up
// to readChunkSize (four segments, so per-message costs are paid once per
// MiB) as gRPC accepts them. A stream holds about three messages at a time
// (its own buffer and up to two queued in gRPC), so a client that stops
// early, or keeps small flow-control windows, costs little. Read-ahead of
// the store starts only after readAheadAfter bytes.
const (
	readChunkSize  = 1 << 20
	readFirstChunk = 32 << 10
	readAheadAfter = 2 << 20
)

// headerProbe is how much of an object GetArtifact and ListArtifacts fetch to
// parse its header; larger headers are fetched whole.
const headerProbe = 16 << 10

// location is where an artifact's ciphertext sits now.
type location struct {
	bucket store.Bucket
	key    string
	state  sealgatev1.Artifact_State
	size   int64 // ciphertext object size
}

// locations lists where ref can be, in lookup order: staging first, then
// storage. The mover copies to storage before it deletes the staged copy, so
// whoever misses in staging finds the object in storage.
func (g *Gateway) locations(ref layout.Ref) []location {
	var out []location
	if b, err := g.cfg.Topology.Bucket(ref.Staging); err == nil {
		out = append(out, location{bucket: b, key: ref.StagingKey(), state: sealgatev1.Artifact_STATE_STAGED})
	}
	if b, err := g.cfg.Topology.Bucket(ref.Storage); err == nil {
		out = append(out, location{bucket: b, key: ref.StoredKey(), state: sealgatev1.Artifact_STATE_STORED})
	}
	return out
}

// eachLocation calls fn with ref's object location, staging first, then
// storage: at most two lookups, no catalog. fn returning store.ErrNotFound
// (the object moved on between Stat and Get) goes on to the next location.
// A location whose store is unavailable is skipped too, so a staging region
// that is down does not hide a moved artifact; its error is returned only
// when no location has the object.
func (g *Gateway) eachLocation(ctx context.Context, ref layout.Ref, fn func(location) error) error {
	var firstErr error
	for _, loc := range g.locations(ref) {
		info, err := loc.bucket.Stat(ctx, loc.key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if errors.Is(err, store.ErrUnavailable) {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if err != nil {
			return err
		}
		loc.size = info.Size
		if err := fn(loc); !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return artifactNotFound(ref.Name())
}

// openObject opens ref's object, parses its header and checks that the header
// belongs to ref. It returns the header, a reader positioned at the body, and
// the location. length limits how much of the object is fetched (-1: all).
func (g *Gateway) openObject(ctx context.Context, ref layout.Ref, length int64) (h *keys.Header, body io.Reader, c io.Closer, at location, err error) {
	err = g.eachLocation(ctx, ref, func(loc location) error {
		var oerr error
		h, body, c, oerr = openAt(ctx, ref, loc, length)
		at = loc
		return oerr
	})
	return h, body, c, at, err
}

// openAt opens the object at loc and parses and checks its header.
func openAt(ctx context.Context, ref layout.Ref, loc location, length int64) (*keys.Header, io.Reader, io.Closer, error) {
	rc, err := loc.bucket.Get(ctx, loc.key, 0, length)
	if err != nil {
		return nil, nil, nil, err
	}
	if length < 0 {
		// Whole objects: fetch ahead while the caller decrypts, once the
		// caller has shown it keeps up.
		rc = newLazyReadAhead(rc, readAheadAfter)
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	h, err := keys.ReadHeader(br)
	if err == nil {
		err = checkHeader(ref, h)
	}
	if err != nil {
		rc.Close()
		return nil, nil, nil, err
	}
	return h, br, rc, nil
}

// describeAt reads just the header of the object at loc and the artifact's
// lifecycle state.
func (g *Gateway) describeAt(ctx context.Context, ref layout.Ref, loc location) (*sealgatev1.Artifact, error) {
	h, _, c, err := openAt(ctx, ref, loc, headerProbe)
	if err != nil && errors.Is(err, keys.ErrIntegrity) && loc.size > headerProbe {
		h, _, c, err = openAt(ctx, ref, loc, -1) // a header longer than the probe
	}
	if err != nil {
		return nil, err
	}
	c.Close()
	size, err := h.PlaintextSize(loc.size - int64(h.Len()))
	if err != nil {
		return nil, err
	}
	a := artifactFromHeader(ref, h, size, loc.state)
	st, err := g.stateOf(ctx, ref, h)
	if err != nil {
		return nil, err
	}
	if len(h.ExternalShareIDs()) > 0 && g.cfg.Lifecycle != nil && st.rec == nil {
		return nil, artifactNotFound(ref.Name()) // purged: only a stray object is left
	}
	st.decorate(a)
	return a, nil
}

// checkHeader makes sure an object is the artifact it is stored as: an object
// copied over another artifact's (or account's) key fails here, before any key
// is unwrapped.
func checkHeader(ref layout.Ref, h *keys.Header) error {
	if h.Context[keys.ContextAccount] != ref.Account || h.Context[keys.ContextArtifact] != ref.ID ||
		h.Context[keys.ContextRegion] != ref.Storage {
		return fmt.Errorf("%w: object header names another artifact", keys.ErrIntegrity)
	}
	return nil
}

// resolveArtifact parses name and checks that the caller's account owns it.
// Another account's artifact answers exactly like a missing one.
func (g *Gateway) resolveArtifact(ctx context.Context, p *auth.Principal, name string) (layout.Ref, error) {
	ref, ok := layout.ParseArtifactName(name)
	if !ok {
		if _, perr := layout.ParseAccountName(name); perr {
			return ref, artifactNotFound(name)
		}
		return ref, invalidArgument("name", "want accounts/{account}/artifacts/{artifact}", ReasonInvalidArgument)
	}
	if ref.Account != p.Account {
		g.otherAccount(ctx, p, name)
		return ref, artifactNotFound(name)
	}
	return ref, nil
}

// GetArtifact returns an artifact's metadata from its object header, without
// unwrapping its key.
func (s *artifactService) GetArtifact(ctx context.Context, req *sealgatev1.GetArtifactRequest) (*sealgatev1.Artifact, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleReader, auth.RoleAuditor, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	ref, err := g.resolveArtifact(ctx, p, req.GetName())
	if err != nil {
		return nil, err
	}
	a, err := g.describe(ctx, ref)
	if err != nil {
		return nil, g.toStatus(ctx, "get", err)
	}
	return a, nil
}

// describe locates ref and reads just its header.
func (g *Gateway) describe(ctx context.Context, ref layout.Ref) (a *sealgatev1.Artifact, err error) {
	err = g.eachLocation(ctx, ref, func(loc location) error {
		var derr error
		a, derr = g.describeAt(ctx, ref, loc)
		return derr
	})
	return a, err
}

// ReadArtifact streams an artifact's plaintext. The first message carries the
// artifact's metadata. Plaintext is released one verified segment at a time:
// a failed check ends the stream with DATA_LOSS and sends nothing of the
// failed segment.
func (s *artifactService) ReadArtifact(req *sealgatev1.ReadArtifactRequest, stream sealgatev1.ArtifactService_ReadArtifactServer) error {
	g := s.g
	ctx := stream.Context()
	p, err := g.require(ctx, auth.RoleReader)
	if err != nil {
		return err
	}
	ref, err := g.resolveArtifact(ctx, p, req.GetName())
	if err != nil {
		return err
	}
	err = g.readArtifact(ctx, p, ref, stream)
	g.metrics.Reads.WithLabelValues(outcome(err)).Inc()
	return err
}

// readArtifact streams ref's plaintext and records the read or its denial.
// The read is recorded as completed only after its last byte was verified
// and handed to gRPC; otherwise as aborted (the client went away or stopped
// reading) or failed, with the reason.
func (g *Gateway) readArtifact(ctx context.Context, p *auth.Principal, ref layout.Ref, stream sealgatev1.ArtifactService_ReadArtifactServer) (err error) {
	h, body, c, loc, err := g.openObject(ctx, ref, -1)
	if err != nil {
		return g.toStatus(ctx, "read", err)
	}
	defer c.Close()
	size, err := h.PlaintextSize(loc.size - int64(h.Len()))
	if err != nil {
		return g.toStatus(ctx, "read", err)
	}
	st, err := g.stateOf(ctx, ref, h)
	if err != nil {
		return g.toStatus(ctx, "read", err)
	}
	if err := st.servable(h); err != nil {
		g.record(ctx, audit.KindReadDenied, ref.Account, ref.Name(), h.KeyURIs(), err)
		return err
	}
	pendingAudio := st.rec != nil && st.rec.Redaction != nil && st.rec.Redaction.Pending
	if pendingAudio && !p.HasRole(auth.RolePIIViewer) {
		err := redactionPending()
		g.record(ctx, audit.KindReadDenied, ref.Account, ref.Name(), h.KeyURIs(), err)
		return err
	}
	release, err := g.limits.Stream(limits.Read, ref.Account, p.Subject, readMemory(size, h.SegmentSize))
	if err != nil {
		return g.toStatus(ctx, "read", err)
	}
	defer release()
	plain, err := h.Open(ctx, body, g.opener(st))
	if errors.Is(err, lifecycle.ErrShredded) && st.rec != nil && st.rec.Redaction != nil {
		// Opened the version a redaction just replaced: the new one is
		// there, a retry reads it.
		return newStatus(codes.Unavailable, "the recording was just redacted; retry to read the redacted version", ReasonStorageUnavailable, nil)
	}
	if err != nil {
		g.log.InfoContext(ctx, "read refused", "artifact", ref.Name(), "err", err)
		st := g.toStatus(ctx, "read", err)
		g.record(ctx, audit.KindReadDenied, ref.Account, ref.Name(), h.KeyURIs(), st)
		return st
	}
	meta := artifactFromHeader(ref, h, size, loc.state)
	st.decorate(meta)
	// Under a masking policy, a reader without pii_viewer gets text with
	// personal data masked; the size then need not match the stored one,
	// so the stream runs to the end of the plaintext instead.
	pii, masked := "", false
	if pendingAudio {
		pii = "unmasked" // a pii_viewer hears the recording before redaction
	}
	if settings, serr := g.cachedSettings(ctx, ref.Account); serr != nil {
		return g.toStatus(ctx, "read", serr)
	} else if mk := masking(settings, meta.GetType(), meta.GetContentType()); mk != nil {
		pii = "unmasked"
		if !p.HasRole(auth.RolePIIViewer) {
			more, err := g.limits.Memory(ref.Account, mk.memory(size))
			if err != nil {
				return g.toStatus(ctx, "read", err)
			}
			defer more()
			pii, masked, plain = "masked", true, mk.reader(plain)
		}
	}
	var sent int64
	defer func() {
		e := audit.Event{Kind: audit.KindRead, Account: ref.Account, Artifact: ref.Name(), KeyURIs: h.KeyURIs(),
			Actor: p.Subject, Outcome: audit.OutcomeOK, Bytes: sent, PII: pii}
		switch {
		case err == nil:
		case ctx.Err() != nil || isStatus(err, codes.Canceled) || errorReasonOf(err) == ReasonReadStalled:
			e.Outcome, e.Detail = audit.OutcomeAborted, errorReasonOf(err)
		default:
			e.Outcome, e.Detail = outcome(err), errorReasonOf(err)
		}
		g.audit.Record(e)
	}()
	out := g.newSender(stream)
	defer out.stop()
	first := meta
	firstSent := false
	chunk := readFirstChunk
	for {
		want := int64(chunk)
		if !masked {
			want = min(want, max(size-sent, 0))
		}
		buf := readPool.Get(int(want))
		n, rerr := io.ReadFull(plain, *buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			readPool.Put(buf)
			g.log.WarnContext(ctx, "read failed", "artifact", ref.Name(), "sent", sent, "err", rerr)
			return g.toStatus(ctx, "read", rerr)
		}
		if !masked && n == len(*buf) && int64(n) == size-sent && rerr == nil {
			// The last byte was read: make the decrypter verify the end.
			var probe [1]byte
			if m, perr := plain.Read(probe[:]); m > 0 {
				readPool.Put(buf)
				return g.toStatus(ctx, "read", fmt.Errorf("%w: body longer than its size", keys.ErrIntegrity))
			} else if perr != nil && !errors.Is(perr, io.EOF) {
				readPool.Put(buf)
				return g.toStatus(ctx, "read", perr)
			}
			rerr = io.EOF
		}
		if n > 0 || !firstSent {
			*buf = (*buf)[:n]
			msg := &readMessage{chunk: buf}
			if !firstSent {
				msg.artifact = first
			}
			if err := out.send(ctx, msg, g.readStall()); err != nil {
				return err
			}
			firstSent = true
			sent += int64(n)
			chunk = min(2*chunk, readChunkSize)
		} else {
			readPool.Put(buf)
		}
		if rerr != nil {
			break
		}
	}
	g.log.InfoContext(ctx, "artifact read", "artifact", ref.Name(), "size", sent)
	return nil
}

// readMemory is the most a read of size plaintext bytes holds in buffers:
// its message buffer and up to two messages queued in gRPC, the read-ahead
// blocks, and the decrypter's segment buffers.
func readMemory(size int64, segment int) int64 {
	msg := min(size, readChunkSize)
	ahead := int64(0)
	if size > readAheadAfter {
		ahead = pipeDepth * pipeBlock
	}
	return 3*msg + ahead + 2*int64(segment) + 64<<10
}
