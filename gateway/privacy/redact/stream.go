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
	"strconv"
	"strings"
	"time"

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
// entities it replaced, and for timed formats where they were said,
// through res, when not nil.
func NewWriter(dst io.Writer, f Format, d *detect.Detector, repl Replacer, res *Result) io.WriteCloser {
	if res == nil {
		res = &Result{}
	}
	res.Timed = f != PlainText
	if f == TranscribeJSON {
		return &jsonWriter{dst: dst, d: d, repl: repl, res: res}
	}
	return &textWriter{dst: dst, d: d, repl: repl, vtt: f == WebVTT, res: res}
}

// Result is what a writer found.
type Result struct {
	// Count is the number of entities replaced.
	Count int
	// Timed is true for formats with timings (WebVTT, Transcribe JSON);
	// Times are then the time ranges that held personal data: the word
	// items of a Transcribe transcript, the cues of a WebVTT file.
	Timed bool
	Times []TimeRange
}

// textWriter redacts plain text or WebVTT through a sliding window.
type textWriter struct {
	dst  io.Writer
	d    *detect.Detector
	repl Replacer
	vtt  bool
	res  *Result
	// cue is the timing of the WebVTT cue the window's text is in, carried
	// from one window to the next.
	cue TimeRange
	buf []byte
	out bytes.Buffer
	err error
}

func (w *textWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	start := 0
	for len(w.buf)-start >= window {
		n, err := w.flush(w.buf[start:start+window], false)
		if err != nil {
			return 0, err
		}
		start += n
	}
	w.buf = append(w.buf[:0], w.buf[start:]...)
	return len(p), nil
}

func (w *textWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	_, err := w.flush(w.buf, true)
	w.buf = w.buf[:0]
	return err
}

// flush redacts chunk and writes out all of it (final) or all but the
// held-back overlap, cut at a line break or white space outside any
// entity. It returns how many bytes of chunk it wrote out.
func (w *textWriter) flush(chunk []byte, final bool) (int, error) {
	text := string(chunk)
	var pieces []piece
	if w.vtt {
		pieces = w.findVTT(text)
	} else {
		for _, s := range w.d.Find(text) {
			pieces = append(pieces, piece{start: s.Start, end: s.End, entityStart: s.Start, entityEnd: s.End, first: true, value: text[s.Start:s.End], typ: s.Type})
		}
	}
	cut := len(text)
	if !final {
		cut = holdBack(text)
		// No entity is longer than the overlap, so one that straddles the
		// cut starts well after the beginning of the window.
		for _, p := range pieces {
			if p.start < cut && p.entityEnd > cut {
				cut = p.entityStart
			}
		}
	}
	w.out.Reset()
	pos := 0
	for _, p := range pieces {
		if p.entityEnd > cut {
			break
		}
		w.out.WriteString(text[pos:p.start])
		if p.first {
			w.out.WriteString(w.repl(p.value, p.typ))
			w.res.Count++
			if w.vtt {
				w.res.Times = append(w.res.Times, TimeRange{Start: p.cue.Start, End: p.cue.End, Type: p.typ})
			}
		}
		pos = p.end
	}
	w.out.WriteString(text[pos:cut])
	if _, err := w.dst.Write(w.out.Bytes()); err != nil {
		w.err = err
		return 0, err
	}
	return cut, nil
}

// piece is the part of an entity that lies in one stretch of text: the
// first piece gets the replacement, the others are removed. entityStart
// and entityEnd bound the whole entity.
type piece struct {
	start, end             int
	entityStart, entityEnd int
	first                  bool
	value                  string
	typ                    detect.Type
	cue                    TimeRange // WebVTT: the cue of the entity's first piece
}

// findVTT finds entities in the cue text of a WebVTT document, read as one
// running text (so a number said across two cues is found whole), and
// returns where they lie in text. Headers, cue identifiers, timing lines
// and NOTE, STYLE and REGION blocks are never examined or changed.
func (w *textWriter) findVTT(text string) []piece {
	type seg struct {
		view, text, n int
		cue           TimeRange
	}
	var view strings.Builder
	var segs []seg
	lines := strings.SplitAfter(text, "\n")
	skipBlock := false
	for i, pos := 0, 0; i < len(lines); pos, i = pos+len(lines[i]), i+1 {
		line := strings.TrimRight(lines[i], "\r\n")
		next := ""
		if i+1 < len(lines) {
			next = lines[i+1]
		}
		switch {
		case line == "":
			skipBlock = false
			continue
		case strings.Contains(line, "-->") && !skipBlock:
			if c, ok := parseCueTiming(line); ok {
				w.cue = c
			}
			continue
		case skipBlock, strings.HasPrefix(line, "WEBVTT"), strings.Contains(next, "-->"):
			continue // a header or a cue identifier
		case strings.HasPrefix(line, "NOTE"), strings.HasPrefix(line, "STYLE"), strings.HasPrefix(line, "REGION"):
			skipBlock = true
			continue
		}
		if view.Len() > 0 {
			view.WriteByte(' ')
		}
		segs = append(segs, seg{view: view.Len(), text: pos, n: len(line), cue: w.cue})
		view.WriteString(line)
	}
	v := view.String()
	var out []piece
	for _, s := range w.d.Find(v) {
		var ps []piece
		var cue TimeRange
		for _, g := range segs {
			a, b := max(s.Start, g.view), min(s.End, g.view+g.n)
			if a < b {
				if len(ps) == 0 {
					cue = g.cue
				} else {
					cue.End = max(cue.End, g.cue.End) // said across cues
				}
				ps = append(ps, piece{start: g.text + a - g.view, end: g.text + b - g.view})
			}
		}
		for k := range ps {
			ps[k].entityStart, ps[k].entityEnd = ps[0].start, ps[len(ps)-1].end
			ps[k].first, ps[k].value, ps[k].typ, ps[k].cue = k == 0, v[s.Start:s.End], s.Type, cue
		}
		out = append(out, ps...)
	}
	return out
}

// holdBack returns where to cut a full window: after the last blank line
// (a WebVTT cue boundary) or line break before the overlap, else the last
// white space, else (one long token) just before the overlap.
func holdBack(text string) int {
	limit := len(text) - overlap
	tail := text[limit-overlap : limit]
	if i := strings.LastIndex(tail, "\n\n"); i >= 0 {
		return limit - overlap + i + 2
	}
	if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
		return limit - overlap + i + 1
	}
	for cut := limit; cut > limit-overlap; cut-- {
		if isSpace(text[cut-1]) {
			return cut
		}
	}
	return limit
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// parseCueTiming parses a WebVTT timing line, "00:01.000 --> 00:04.500"
// or with hours, and any cue settings after it.
func parseCueTiming(line string) (TimeRange, bool) {
	a, b, ok := strings.Cut(line, "-->")
	if !ok {
		return TimeRange{}, false
	}
	start, ok1 := parseVTTTime(strings.TrimSpace(a))
	fields := strings.Fields(b)
	if len(fields) == 0 {
		return TimeRange{}, false
	}
	end, ok2 := parseVTTTime(fields[0])
	return TimeRange{Start: start, End: end}, ok1 && ok2 && end >= start
}

// parseVTTTime parses [hh:]mm:ss.ttt.
func parseVTTTime(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var d time.Duration
	for i, p := range parts[:len(parts)-1] {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || i > 0 && n > 59 {
			return 0, false
		}
		d = d*60 + time.Duration(n)
	}
	sec, err := strconv.ParseFloat(parts[len(parts)-1], 64)
	if err != nil || sec < 0 || sec >= 60 {
		return 0, false
	}
	return d*time.Minute + time.Duration(sec*float64(time.Second)), true
}
