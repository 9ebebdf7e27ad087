package gateway

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/privacy/audio"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// Audio redaction: a recording of an account that redacts is stored as it
// came, pending, and only a pii_viewer may read it. The transcripts of its
// engagement (AWS Transcribe JSON or WebVTT, in either order) say when
// personal data was said; the redactor then writes a version with those
// spans silent under a fresh data key, installs it in place of the
// original, and destroys the original's external share, so no copy of the
// original stays readable.

// Kinds pair recordings with the transcripts that time them.
const (
	kindCall      = "call"
	kindVoicemail = "voicemail"
)

// recordingKind returns the kind of a recording type, "" for others.
func recordingKind(t sealgatev1.ArtifactType) string {
	switch t {
	case sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, sealgatev1.ArtifactType_ARTIFACT_TYPE_AUDIO_SURVEY:
		return kindCall
	case sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL:
		return kindVoicemail
	}
	return ""
}

// transcriptKind returns the kind of recordings a transcript type times.
func transcriptKind(t sealgatev1.ArtifactType) string {
	switch t {
	case sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT:
		return kindCall
	case sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL_TRANSCRIPT:
		return kindVoicemail
	}
	return ""
}

// audioRedaction returns the kind of an upload that must be redacted as
// audio ("" when none), or the status that refuses it: a recording the
// gateway cannot silence (compressed audio, video) or cannot pair with a
// transcript (no engagement id).
func audioRedaction(s *sealgatev1.AccountSettings, h *sealgatev1.UploadHeader) (string, error) {
	if !s.GetPrivacyPolicy().GetRedaction().GetEnabled() {
		return "", nil
	}
	if h.GetType() == sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING {
		return "", newStatus(codes.FailedPrecondition,
			"this account redacts recordings, and video cannot be silenced without re-encoding: upload the audio track as WAV",
			ReasonUnsupportedMedia, nil)
	}
	kind := recordingKind(h.GetType())
	if kind == "" {
		return "", nil
	}
	if !audio.IsWAVType(h.GetContentType()) {
		return "", newStatus(codes.FailedPrecondition,
			"this account redacts recordings, and content type "+echo(h.GetContentType())+
				" cannot be silenced without a codec: upload WAV (PCM, float, mu-law or A-law)",
			ReasonUnsupportedMedia, nil)
	}
	if h.GetEngagementId() == "" {
		return "", invalidArgument("header.engagement_id",
			"required when the account redacts recordings: it pairs the recording with its transcript", ReasonInvalidArgument)
	}
	return kind, nil
}

// wavProbe passes an upload through and refuses it, early, unless its
// first bytes are a WAV file the redactor can silence.
type wavProbe struct {
	dst  io.Writer
	head []byte
	ok   bool
}

// maxProbe is how far into an upload its data chunk must start.
const maxProbe = 64 << 10

func (w *wavProbe) Write(p []byte) (int, error) {
	if !w.ok {
		w.head = append(w.head, p[:min(len(p), maxProbe-len(w.head))]...)
		_, err := audio.Probe(w.head)
		switch {
		case err == nil:
			w.ok, w.head = true, nil
		case errors.Is(err, audio.ErrUnsupported) || len(w.head) >= maxProbe || !bytes.HasPrefix([]byte("RIFF"), w.head[:min(4, len(w.head))]):
			return 0, newStatus(codes.FailedPrecondition, "this account redacts recordings, and this upload is not a WAV file it can silence: "+err.Error(),
				ReasonUnsupportedMedia, nil)
		}
	}
	return w.dst.Write(p)
}

// close checks that the upload had a whole WAV header.
func (w *wavProbe) close() error {
	if !w.ok {
		return newStatus(codes.FailedPrecondition, "this account redacts recordings, and this upload is not a whole WAV file",
			ReasonUnsupportedMedia, nil)
	}
	return nil
}

// saveSpans records, for a transcript just stored, when its engagement's
// recordings held personal data.
func (g *Gateway) saveSpans(ctx context.Context, plan *uploadPlan) error {
	kind := transcriptKind(plan.header.GetType())
	if g.cfg.Lifecycle == nil || plan.redactor == nil || kind == "" || !plan.redactor.result.Timed || plan.header.GetEngagementId() == "" {
		return nil
	}
	var spans []lifecycle.TimeSpan
	for _, t := range plan.redactor.result.Times {
		spans = append(spans, lifecycle.TimeSpan{StartMs: t.Start.Milliseconds(), EndMs: (t.End + time.Millisecond - 1).Milliseconds()})
	}
	if err := g.cfg.Lifecycle.PutSpans(ctx, plan.ref.Account, plan.header.GetEngagementId(), kind, plan.ref.ID, spans); err != nil {
		return err
	}
	// Recordings of the engagement redacted before this transcript came
	// are redacted again with its spans too (privacy first: until then
	// only a pii_viewer may read them).
	refs, err := g.cfg.Lifecycle.Recordings(ctx, plan.ref.Account, plan.header.GetEngagementId(), kind)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		rec, err := g.cfg.Lifecycle.Update(ctx, ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
			if cur == nil || cur.Redaction == nil || cur.Redaction.Pending {
				return nil, lifecycle.ErrNoChange
			}
			next := *cur
			red := *cur.Redaction
			red.Pending = true
			next.Redaction = &red
			return &next, nil
		})
		if err != nil {
			return err
		}
		if rec != nil {
			if err := g.cfg.Lifecycle.IndexRedaction(ctx, ref); err != nil {
				return err
			}
		}
	}
	g.wakeRedactor()
	return nil
}

// Redactor steps, for crash tests (SEALGATE_SWEEPER_PAUSE_AT).
const (
	RedactStepStart    = "redact-start"
	RedactStepWritten  = "redacted-version-written"
	RedactStepNext     = "next-share-recorded"
	RedactStepReplaced = "object-replaced"
	RedactStepShredded = "original-shredded"
)

// RedactHook is called at each step of a replacement; an error stops it
// there.
type RedactHook func(step string, ref layout.Ref) error

// SetRedactHook sets the hook of the redactor.
func (g *Gateway) SetRedactHook(h RedactHook) { g.redactHook = h }

func (g *Gateway) redactStep(step string, ref layout.Ref) error {
	if g.redactHook == nil {
		return nil
	}
	return g.redactHook(step, ref)
}

// RedactResult counts what a redaction pass did.
type RedactResult struct {
	Redacted, Waiting, Failed int
}

// wakeRedactor makes a running redactor look at its index now.
func (g *Gateway) wakeRedactor() {
	select {
	case g.redactWake <- struct{}{}:
	default:
	}
}

// RunRedactor redacts pending recordings every interval, and when woken,
// until ctx ends.
func (g *Gateway) RunRedactor(ctx context.Context, interval time.Duration) {
	if g.cfg.Lifecycle == nil {
		return
	}
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.redactWake:
		}
		if _, err := g.RedactPass(ctx); err != nil && ctx.Err() == nil {
			g.log.WarnContext(ctx, "redaction pass failed", "err", err)
		}
		t.Reset(interval)
	}
}

// RedactPass looks at every pending recording once and redacts those whose
// transcript has arrived.
func (g *Gateway) RedactPass(ctx context.Context) (RedactResult, error) {
	var res RedactResult
	if g.cfg.Lifecycle == nil {
		return res, nil
	}
	after := ""
	for {
		refs, next, err := g.cfg.Lifecycle.PendingRedactions(ctx, after, 500)
		if err != nil {
			return res, err
		}
		for _, ref := range refs {
			done, err := g.redactOne(ctx, ref)
			switch {
			case err != nil:
				res.Failed++
				g.log.WarnContext(ctx, "redaction failed; will retry", "artifact", ref.Name(), "err", err)
			case done:
				res.Redacted++
			default:
				res.Waiting++
			}
		}
		if len(refs) < 500 {
			return res, nil
		}
		after = next
	}
}

// sideKey is where the redacted version is written before it replaces the
// original, in the storage region's bucket.
func sideKey(ref layout.Ref) string { return "redacting/" + ref.Account + "/" + ref.ID }

// redactOne redacts ref if it can now, resuming a replacement a crash
// interrupted. It returns whether the recording is redacted.
func (g *Gateway) redactOne(ctx context.Context, ref layout.Ref) (bool, error) {
	lc := g.cfg.Lifecycle
	rec, _, err := lc.Load(ctx, ref)
	if err != nil {
		return false, err
	}
	bucket, err := g.cfg.Topology.Bucket(ref.Storage)
	if err != nil {
		return false, err
	}
	if rec == nil || rec.Redaction == nil || !rec.Redaction.Pending {
		// Purged, or done: drop what is left of a replacement.
		if err := bucket.Delete(ctx, sideKey(ref)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		return rec != nil, lc.UnindexRedaction(ctx, ref)
	}
	r := rec.Redaction
	if rec.Deleted != nil || rec.Hold != nil {
		return false, nil // deleted content waits for its purge, held content stays as it is
	}
	if hold, err := lc.EngagementHold(ctx, ref.Account, rec.Engagement); err != nil || hold != nil {
		return false, err
	}
	spans, found, err := lc.Spans(ctx, ref.Account, rec.Engagement, r.Kind)
	if err != nil || !found {
		return false, err // no transcript yet
	}
	// Only once the mover is done: it must never copy the original over
	// the redacted version.
	if staging, err := g.cfg.Topology.Bucket(ref.Staging); err != nil {
		return false, err
	} else if _, err := staging.Stat(ctx, ref.StagingKey()); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if err := g.redactStep(RedactStepStart, ref); err != nil {
		return false, err
	}
	stored, err := shareOf(ctx, bucket, ref.StoredKey(), ref)
	if err != nil {
		return false, err
	}
	switch {
	case r.Next != "" && stored == r.Next:
		// The redacted version is in place: only the shredding is left.
	case r.Next != "" && sideShare(ctx, bucket, ref) == r.Next:
		if err := g.installSide(ctx, bucket, ref); err != nil {
			return false, err
		}
	default:
		if err := g.writeRedacted(ctx, bucket, ref, rec, spans); err != nil {
			return false, err
		}
		if err := g.installSide(ctx, bucket, ref); err != nil {
			return false, err
		}
	}
	// The original's share goes: every copy of it is unreadable from now.
	// Only if the stored object is the version whose share stays (another
	// writer of the stored key, such as a second redactor, must never leave
	// it holding a version whose share is destroyed), and not held.
	rec, err = lc.Update(ctx, ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
		if cur == nil || cur.Redaction == nil || cur.Redaction.Next == "" {
			return nil, fmt.Errorf("gateway: the record of %s changed during its redaction", ref.Name())
		}
		if cur.Hold != nil {
			return nil, fmt.Errorf("gateway: %s was put on hold during its redaction", ref.Name())
		}
		if now, err := shareOf(ctx, bucket, ref.StoredKey(), ref); err != nil || now != cur.Redaction.Next {
			return nil, fmt.Errorf("gateway: the stored object of %s is not the redacted version (%v); retrying", ref.Name(), err)
		}
		next := *cur
		next.Shares = map[string][]byte{cur.Redaction.Next: cur.Shares[cur.Redaction.Next]}
		red := *cur.Redaction
		now := g.now().UTC()
		red.Pending, red.Next, red.Done = false, "", &now
		next.Redaction = &red
		return &next, nil
	})
	if err != nil {
		return false, err
	}
	// Something that wrote the stored key meanwhile (a mover's copy that
	// was late) is undone from the side object, which is still there.
	kept := hexShare(rec)
	if now, err := shareOf(ctx, bucket, ref.StoredKey(), ref); err != nil || now != kept {
		if err := g.installSide(ctx, bucket, ref); err != nil {
			return false, err
		}
	}
	if err := g.redactStep(RedactStepShredded, ref); err != nil {
		return false, err
	}
	if err := bucket.Delete(ctx, sideKey(ref)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if err := lc.UnindexRedaction(ctx, ref); err != nil {
		return false, err
	}
	detail := fmt.Sprintf("silenced %d spans, %.3f s", rec.Redaction.Spans, float64(rec.Redaction.SilencedMs)/1000)
	g.audit.Record(audit.Event{Kind: audit.KindRedacted, Account: ref.Account, Artifact: ref.Name(), Actor: "redactor",
		Outcome: audit.OutcomeOK, Detail: detail})
	g.log.InfoContext(ctx, "recording redacted", "artifact", ref.Name(), "spans", rec.Redaction.Spans,
		"silenced", time.Duration(rec.Redaction.SilencedMs)*time.Millisecond)
	return true, nil
}

// hexShare returns the id of a record's only share.
func hexShare(rec *lifecycle.Record) string {
	for id := range rec.Shares {
		return id
	}
	return ""
}

// shareOf returns the hex id of the external share named by the header of
// the object at key ("" when it has none).
func shareOf(ctx context.Context, b store.Bucket, key string, ref layout.Ref) (string, error) {
	rc, err := b.Get(ctx, key, 0, headerProbe)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h, err := keys.ReadHeader(rc)
	if err != nil {
		return "", err
	}
	if err := checkHeader(ref, h); err != nil {
		return "", err
	}
	if ids := h.ExternalShareIDs(); len(ids) > 0 {
		return hex.EncodeToString(ids[0]), nil
	}
	return "", nil
}

// sideShare returns the share id of the side object, "" when there is none.
func sideShare(ctx context.Context, b store.Bucket, ref layout.Ref) string {
	id, err := shareOf(ctx, b, sideKey(ref), ref)
	if err != nil {
		return ""
	}
	return id
}

// writeRedacted writes the redacted version of ref to its side key under
// a fresh data key, then records its share as the next one (the original
// stays the one served).
func (g *Gateway) writeRedacted(ctx context.Context, bucket store.Bucket, ref layout.Ref, rec *lifecycle.Record, spans []lifecycle.TimeSpan) error {
	h, body, c, _, err := g.openObject(ctx, ref, -1)
	if err != nil {
		return err
	}
	defer c.Close()
	plain, err := h.Open(ctx, body, lifecycle.Opener{Record: rec, Next: g.cfg.Keys})
	if err != nil {
		return err
	}
	settings, err := g.cfg.Settings.Get(ctx, ref.Account)
	if err != nil {
		return err
	}
	mode, wrappers, err := g.keysFor(ctx, ref.Account, settings.GetKeyPolicy())
	if err != nil {
		return err
	}
	ext := &lifecycle.ExternalShare{}
	meta := maps.Clone(h.Metadata)
	meta[metaRedactTime] = g.now().UTC().Format(time.RFC3339Nano)
	sealer, err := keys.NewSealer(ctx, keys.SealParams{Context: h.Context, Metadata: meta, Mode: mode,
		Wrappers: append(wrappers, ext), SegmentSize: g.cfg.SegmentSize})
	if err != nil {
		return err
	}
	var as []audio.Span
	for _, s := range spans {
		as = append(as, audio.Span{Start: s.Start() - g.audioMargin(settings), End: s.End() + g.audioMargin(settings)})
	}
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		err := bucket.Put(ctx, sideKey(ref), pr, -1)
		pr.CloseWithError(err)
		putDone <- err
	}()
	enc, err := sealer.Encrypt(pw)
	if err != nil {
		pw.CloseWithError(err)
		<-putDone
		return err
	}
	st, err := audio.Silence(enc, plain, as)
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		pw.CloseWithError(err)
		<-putDone
		return err
	}
	pw.Close()
	if err := <-putDone; err != nil {
		return err
	}
	if err := g.redactStep(RedactStepWritten, ref); err != nil {
		return err
	}
	_, err = g.cfg.Lifecycle.Update(ctx, ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
		if cur == nil || cur.Redaction == nil {
			return nil, fmt.Errorf("gateway: the record of %s is gone", ref.Name())
		}
		if cur.Redaction.Next != rec.Redaction.Next {
			// Another redactor recorded its version since this one began:
			// its version wins, this one is never installed.
			return nil, fmt.Errorf("gateway: another redactor is at work on %s", ref.Name())
		}
		next := *cur
		next.Shares = maps.Clone(cur.Shares)
		red := *cur.Redaction
		if red.Next != "" {
			delete(next.Shares, red.Next) // an earlier attempt's version, never installed
		}
		next.Shares[ext.ID()] = ext.Share()
		red.Next, red.Spans, red.SilencedMs = ext.ID(), st.Spans, st.Silenced().Milliseconds()
		next.Redaction = &red
		return &next, nil
	})
	if err != nil {
		return err
	}
	return g.redactStep(RedactStepNext, ref)
}

// installSide copies the side object over the stored one, unless the
// recording was put on hold since the pass began.
func (g *Gateway) installSide(ctx context.Context, bucket store.Bucket, ref layout.Ref) error {
	rec, _, err := g.cfg.Lifecycle.Load(ctx, ref)
	if err != nil {
		return err
	}
	if rec == nil || rec.Hold != nil {
		return fmt.Errorf("gateway: %s was purged or put on hold during its redaction", ref.Name())
	}
	if hold, err := g.cfg.Lifecycle.EngagementHold(ctx, ref.Account, rec.Engagement); err != nil || hold != nil {
		return fmt.Errorf("gateway: %s: engagement on hold during its redaction (%v)", ref.Name(), err)
	}
	info, err := bucket.Stat(ctx, sideKey(ref))
	if err != nil {
		return err
	}
	rc, err := bucket.Get(ctx, sideKey(ref), 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := bucket.Put(ctx, ref.StoredKey(), rc, info.Size); err != nil {
		return err
	}
	return g.redactStep(RedactStepReplaced, ref)
}

// defaultAudioMargin widens each silenced span on both sides.
const defaultAudioMargin = 100 * time.Millisecond

func (g *Gateway) audioMargin(s *sealgatev1.AccountSettings) time.Duration {
	if m := s.GetPrivacyPolicy().AudioMarginMs; m != nil {
		return time.Duration(*m) * time.Millisecond
	}
	return defaultAudioMargin
}

// redactionPending is the status of a read of a recording not yet redacted
// by a principal without pii_viewer.
func redactionPending() error {
	return newStatus(codes.FailedPrecondition,
		"the recording is waiting for its transcript to be redacted; until then only a pii_viewer may read it",
		ReasonRedactionPending, nil)
}
