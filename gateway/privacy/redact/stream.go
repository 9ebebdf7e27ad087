// Package redact applies the findings of package detect to content as it
// streams: redaction at ingest (each entity replaced by a placeholder such
// as "[PHONE NUMBER]") and masking on read (each entity's critical part
// hidden, its structure kept). Text and WebVTT are processed in a sliding
// window that never splits an entity; AWS Transcribe JSON is rewritten
// item by item, keeping every timing.
package redact

import (
	"bytes"
	"io"
	"strings"

	"github.com/sealgate/sealgate/gateway/privacy/detect"
)

// Replacer returns the text that takes the place of value, an entity of
// type t.
type Replacer func(value string, t detect.Type) string

// Placeholders replaces every entity with its placeholder.
func Placeholders(_ string, t detect.Type) string { return t.Placeholder() }

// Window sizes: text is examined window bytes at a time, and the last
// overlap bytes of each window are examined again with what follows, so an
// entity that straddles a boundary is seen whole. No entity is longer than
// the overlap.
const (
	window  = 64 << 10
	overlap = 2 << 10
)

// Format says how content is laid out.
type Format int

// Formats.
const (
	PlainText Format = iota
	WebVTT
	TranscribeJSON
)

// FormatOf returns the format of a content type, and false for one that
// cannot be processed as text.
func FormatOf(contentType string) (Format, bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	switch ct {
	case "", "text/plain", "text/markdown", "message/rfc822", "text/csv":
		return PlainText, true
	case "text/vtt":
		return WebVTT, true
	case "application/json", "application/vnd.aws.transcribe+json":
		return TranscribeJSON, true
	}
	return 0, false
}

// NewWriter returns a WriteCloser that writes content of format f to dst
// with every entity d finds replaced by repl. Close flushes what is held
// back (and, for Transcribe JSON, all of it: that format is rewritten
// whole, at most maxJSON bytes); it does not close dst. It reports how many
// entities it replaced through count, when not nil.
func NewWriter(dst io.Writer, f Format, d *detect.Detector, repl Replacer, count *int) io.WriteCloser {
	if f == TranscribeJSON {
		return &jsonWriter{dst: dst, d: d, repl: repl, count: count}
	}
	return &textWriter{dst: dst, d: d, repl: repl, vtt: f == WebVTT, count: count}
}

// textWriter redacts plain text or WebVTT through a sliding window.
type textWriter struct {
	dst   io.Writer
	d     *detect.Detector
	repl  Replacer
	vtt   bool
	count *int
	buf   []byte
	err   error
}

func (w *textWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	for len(w.buf) >= window {
		if err := w.flush(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *textWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	return w.flush(true)
}

// flush redacts the buffer and writes out all of it (final) or all but the
// held-back overlap, cut at white space outside any entity.
func (w *textWriter) flush(final bool) error {
	text := string(w.buf)
	view := text
	if w.vtt {
		view = blankCueTimings(text)
	}
	spans := w.d.Find(view)
	cut := len(text)
	if !final {
		cut = len(text) - overlap
		for cut > 0 && !isSpace(text[cut-1]) {
			cut--
		}
		for _, s := range spans {
			if s.Start < cut && s.End > cut {
				cut = s.Start
			}
		}
		if cut == 0 { // one huge token: let it through unredacted rather than grow without bound
			cut = len(text) - overlap
		}
	}
	var out bytes.Buffer
	pos := 0
	for _, s := range spans {
		if s.End > cut {
			break
		}
		out.WriteString(text[pos:s.Start])
		out.WriteString(w.replaceSpan(text, view, s))
		pos = s.End
		if w.count != nil {
			*w.count++
		}
	}
	out.WriteString(text[pos:cut])
	if _, err := w.dst.Write(out.Bytes()); err != nil {
		w.err = err
		return err
	}
	w.buf = append(w.buf[:0], text[cut:]...)
	return nil
}

// replaceSpan returns the replacement of span s; in WebVTT, lines that are
// cue timings inside the span are kept as they are, and the entity's parts
// on other lines are removed.
func (w *textWriter) replaceSpan(text, view string, s detect.Span) string {
	value := text[s.Start:s.End]
	if !w.vtt || view[s.Start:s.End] == value {
		return w.repl(value, s.Type)
	}
	var out strings.Builder
	placed := false
	for i := s.Start; i < s.End; {
		j := i
		protected := view[i] != text[i] || text[i] == '\n'
		for j < s.End && (view[j] != text[j] || text[j] == '\n') == protected {
			j++
		}
		switch {
		case protected:
			out.WriteString(text[i:j])
		case !placed:
			out.WriteString(w.repl(value, s.Type))
			placed = true
		}
		i = j
	}
	return out.String()
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// blankCueTimings returns text with WebVTT lines that are not cue text
// (the header, timing lines, NOTE/STYLE/REGION blocks) blanked, so that
// detection never sees a timestamp, while byte offsets stay the same.
func blankCueTimings(text string) string {
	b := []byte(text)
	start := 0
	for start < len(b) {
		end := bytes.IndexByte(b[start:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += start
		}
		line := string(b[start:end])
		if strings.Contains(line, "-->") || strings.HasPrefix(line, "WEBVTT") || strings.HasPrefix(line, "NOTE") ||
			strings.HasPrefix(line, "STYLE") || strings.HasPrefix(line, "REGION") {
			for k := start; k < end; k++ {
				b[k] = ' '
			}
		}
		start = end + 1
	}
	return string(b)
}
