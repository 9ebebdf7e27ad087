package lifecycle

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/store"
)

// Redaction is the audio redaction state of a recording.
type Redaction struct {
	// Pending is true until the recording is redacted: only a pii_viewer
	// may read it meanwhile.
	Pending bool `json:"pending"`
	// Kind says which transcripts of the engagement give its spans
	// ("call", "voicemail").
	Kind string `json:"kind"`
	// Next is the hex id of the share of the redacted version while it is
	// being installed (set before the object is replaced, cleared when the
	// original's share is destroyed).
	Next string `json:"next,omitempty"`
	// What was silenced: spans and their total duration (never the words).
	Spans      int        `json:"spans,omitempty"`
	SilencedMs int64      `json:"silenced_ms,omitempty"`
	Done       *time.Time `json:"done,omitempty"`
}

// TimeSpan is a stretch of a recording, in milliseconds.
type TimeSpan struct {
	StartMs int64 `json:"start_ms"`
	EndMs   int64 `json:"end_ms"`
}

// Start and End return the span's bounds as durations.
func (s TimeSpan) Start() time.Duration { return time.Duration(s.StartMs) * time.Millisecond }
func (s TimeSpan) End() time.Duration   { return time.Duration(s.EndMs) * time.Millisecond }

// transcriptSpans is what one transcript says about its engagement's
// recordings: when personal data was said. Times only, never words.
type transcriptSpans struct {
	Transcript string     `json:"transcript"`
	Spans      []TimeSpan `json:"spans"`
}

func spansPrefix(account, engagement, kind string) string {
	return "spans/" + account + "/" + base64.RawURLEncoding.EncodeToString([]byte(engagement)) + "/" + kind + "/"
}

// PutSpans records the spans of personal data that transcript id of an
// engagement found (possibly none: the recordings then have nothing to
// silence, and can be marked redacted).
func (s *Store) PutSpans(ctx context.Context, account, engagement, kind, id string, spans []TimeSpan) error {
	data, err := json.Marshal(transcriptSpans{Transcript: id, Spans: spans})
	if err != nil {
		return err
	}
	if err := s.b.Put(ctx, spansPrefix(account, engagement, kind)+id+".json", bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("lifecycle: spans of %s: %w", id, err)
	}
	return nil
}

// DeleteSpans removes what transcript id recorded.
func (s *Store) DeleteSpans(ctx context.Context, account, engagement, kind, id string) error {
	return s.remove(ctx, spansPrefix(account, engagement, kind)+id+".json")
}

// maxSpans bounds one transcript's spans object.
const maxSpans = 4 << 20

// Spans returns the spans of every transcript of kind of an engagement,
// and whether there is any such transcript at all.
func (s *Store) Spans(ctx context.Context, account, engagement, kind string) ([]TimeSpan, bool, error) {
	prefix := spansPrefix(account, engagement, kind)
	objs, err := s.b.List(ctx, prefix, "", 1000)
	if err != nil {
		return nil, false, fmt.Errorf("lifecycle: spans: %w", err)
	}
	var out []TimeSpan
	for _, o := range objs {
		data, _, err := s.b.Load(ctx, o.Key, maxSpans)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("lifecycle: spans: %w", err)
		}
		var ts transcriptSpans
		if err := json.Unmarshal(data, &ts); err != nil {
			return nil, false, fmt.Errorf("lifecycle: spans %s: %w", o.Key, err)
		}
		out = append(out, ts.Spans...)
	}
	return out, len(objs) > 0, nil
}

func recordingsPrefix(account, engagement, kind string) string {
	return "recordings/" + account + "/" + base64.RawURLEncoding.EncodeToString([]byte(engagement)) + "/" + kind + "/"
}

// IndexRecording adds a recording to its engagement's list, so that a
// transcript arriving later finds every recording it times.
func (s *Store) IndexRecording(ctx context.Context, ref layout.Ref, engagement, kind string) error {
	return s.touch(ctx, recordingsPrefix(ref.Account, engagement, kind)+ref.ID)
}

// UnindexRecording removes it.
func (s *Store) UnindexRecording(ctx context.Context, ref layout.Ref, engagement, kind string) error {
	return s.remove(ctx, recordingsPrefix(ref.Account, engagement, kind)+ref.ID)
}

// Recordings returns the recordings of kind of an engagement.
func (s *Store) Recordings(ctx context.Context, account, engagement, kind string) ([]layout.Ref, error) {
	prefix := recordingsPrefix(account, engagement, kind)
	var out []layout.Ref
	for after := ""; ; {
		objs, err := s.b.List(ctx, prefix, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: recordings: %w", err)
		}
		for _, o := range objs {
			if ref, ok := layout.ParseArtifactName(layout.ArtifactName(account, strings.TrimPrefix(o.Key, prefix))); ok {
				out = append(out, ref)
			}
			after = o.Key
		}
		if len(objs) < 1000 {
			return out, nil
		}
	}
}

const redactPrefix = "redact/"

func redactKey(ref layout.Ref) string { return redactPrefix + ref.Account + "/" + ref.ID }

// IndexRedaction adds a recording to the index of pending redactions.
func (s *Store) IndexRedaction(ctx context.Context, ref layout.Ref) error {
	return s.touch(ctx, redactKey(ref))
}

// UnindexRedaction removes it.
func (s *Store) UnindexRedaction(ctx context.Context, ref layout.Ref) error {
	return s.remove(ctx, redactKey(ref))
}

// PendingRedactions returns up to limit recordings of the index after the
// key after ("" for the start), and the key to continue from.
func (s *Store) PendingRedactions(ctx context.Context, after string, limit int) ([]layout.Ref, string, error) {
	objs, err := s.b.List(ctx, redactPrefix, after, limit)
	if err != nil {
		return nil, "", fmt.Errorf("lifecycle: pending redactions: %w", err)
	}
	var out []layout.Ref
	for _, o := range objs {
		account, id, ok := strings.Cut(strings.TrimPrefix(o.Key, redactPrefix), "/")
		if ref, ok2 := layout.ParseArtifactName(layout.ArtifactName(account, id)); ok && ok2 {
			out = append(out, ref)
		}
		after = o.Key
	}
	return out, after, nil
}

// ID returns the hex id of the share (after WrapShare).
func (e *ExternalShare) ID() string { return hex.EncodeToString(e.id) }

// Share returns the share (after WrapShare).
func (e *ExternalShare) Share() []byte { return e.share }
