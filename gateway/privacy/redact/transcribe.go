package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sealgate/sealgate/gateway/privacy/detect"
)

// MaxJSON bounds an AWS Transcribe JSON transcript, which is rewritten
// whole (a two-hour call is a few megabytes).
const MaxJSON = 16 << 20

// ErrTooLarge means a transcript exceeds MaxJSON.
var ErrTooLarge = errors.New("redact: transcript JSON larger than 16 MiB")

// ErrNotTranscript means JSON content is not an AWS Transcribe transcript.
var ErrNotTranscript = errors.New("redact: JSON content is not an AWS Transcribe transcript (results.transcripts, results.items)")

// jsonWriter collects a Transcribe transcript and rewrites it on Close.
type jsonWriter struct {
	reserve ReserveFunc
	dst     io.Writer
	d       *detect.Detector
	repl    Replacer
	res     *Result
	buf     bytes.Buffer
}

func (w *jsonWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > MaxJSON {
		return 0, ErrTooLarge
	}
	return w.buf.Write(p)
}

// ReserveFunc reserves n bytes of memory, or refuses them with an error;
// the function it returns gives them back.
type ReserveFunc func(n int64) (release func(), err error)

// SetReserve makes w, when it rewrites Transcribe JSON (which is parsed
// whole once it is all there), reserve JSONMemory of the transcript's size
// through reserve before it parses it, and fail with reserve's error when
// refused. Writers of other formats hold a window at a time and ignore it.
func SetReserve(w io.WriteCloser, reserve ReserveFunc) {
	if jw, ok := w.(*jsonWriter); ok {
		jw.reserve = reserve
	}
}

func (w *jsonWriter) Close() error {
	if w.reserve != nil {
		release, err := w.reserve(JSONMemory(int64(w.buf.Len())))
		if err != nil {
			return err
		}
		defer release()
	}
	// One parse serves both the times and the rewrite: a parsed document
	// takes many times its size in memory (JSONMemory).
	t, err := parseTranscribe(w.buf.Bytes())
	if err != nil {
		return err
	}
	w.buf = bytes.Buffer{}
	times := t.times(w.d) // before the rewrite replaces the words
	out, n, err := t.redact(w.d, w.repl)
	if err != nil {
		return err
	}
	w.res.Count += n
	w.res.Times = append(w.res.Times, times...)
	_, err = w.dst.Write(out)
	return err
}

// JSONMemory is the memory that redacting or masking a Transcribe
// transcript of n bytes may take at once, the bytes collected and the
// rewritten document included. A parsed document takes many times the
// size of its JSON (about 8 times for a real transcript, and up to about
// 50 times for dense JSON of small objects), so parseTranscribe refuses
// a document whose parseCost exceeds this bound.
func JSONMemory(n int64) int64 {
	return jsonMemoryFactor * min(max(n, 0), MaxJSON)
}

// jsonMemoryFactor bounds parseCost per byte of JSON: a real transcript
// comes to about 13, a list of the smallest word items to 24.
const jsonMemoryFactor = 28

// parseCost is an upper bound of the memory parseTranscribe and the
// rewrite take for data, from its objects, object entries and array
// elements, each costed at what a decoded map, map entry or interface
// takes in Go (TestParseCostBoundsTheParse measures it against the heap
// for the densest shapes), plus the bytes and the output.
func parseCost(data []byte) int64 {
	var objects, entries, elements int64
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{':
			objects++
		case c == ':':
			entries++
		case c == ',' || c == '[':
			elements++
		}
	}
	return 2*int64(len(data)) + 288*objects + 80*entries + 40*elements
}

// transcript is the part of a Transcribe document that is rewritten; every
// other field is kept as it was.
type transcript struct {
	doc     map[string]any
	results map[string]any
	items   []map[string]any
}

func parseTranscribe(data []byte) (*transcript, error) {
	if parseCost(data) > JSONMemory(int64(len(data))) {
		return nil, fmt.Errorf("%w: far more objects and values per byte than a transcript has", ErrNotTranscript)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, ErrNotTranscript // the decoder's message would quote the content
	}
	results, ok := doc["results"].(map[string]any)
	if !ok {
		return nil, ErrNotTranscript
	}
	t := &transcript{doc: doc, results: results}
	rawItems, _ := results["items"].([]any)
	for _, it := range rawItems {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, ErrNotTranscript
		}
		t.items = append(t.items, m)
	}
	return t, nil
}

// content returns an item's word and whether it is a pronunciation.
func content(item map[string]any) (string, bool) {
	alts, _ := item["alternatives"].([]any)
	if len(alts) == 0 {
		return "", false
	}
	a, _ := alts[0].(map[string]any)
	c, _ := a["content"].(string)
	return c, item["type"] != "punctuation"
}

func setContent(item map[string]any, s string) {
	alts, _ := item["alternatives"].([]any)
	for _, a := range alts {
		if m, ok := a.(map[string]any); ok {
			m["content"] = s
		}
	}
}

// itemText joins the items' words as the transcript reads them, and
// returns the byte range of each item in it.
func itemText(items []map[string]any) (string, [][2]int) {
	var b strings.Builder
	ranges := make([][2]int, len(items))
	for i, it := range items {
		c, word := content(it)
		if word && b.Len() > 0 {
			b.WriteByte(' ')
		}
		ranges[i] = [2]int{b.Len(), b.Len() + len(c)}
		b.WriteString(c)
	}
	return b.String(), ranges
}

// itemSpans returns, for each entity found in the items' text, the indices
// of the items it covers. The items' ranges are in text order, so each
// entity's first item is found by binary search.
func itemSpans(items []map[string]any, d *detect.Detector) ([]detect.Span, [][]int) {
	text, ranges := itemText(items)
	spans := d.Find(text)
	covered := make([][]int, len(spans))
	for k, s := range spans {
		first := sort.Search(len(ranges), func(i int) bool { return ranges[i][1] > s.Start })
		for i := first; i < len(ranges) && ranges[i][0] < s.End; i++ {
			if r := ranges[i]; r[1] > r[0] {
				covered[k] = append(covered[k], i)
			}
		}
	}
	return spans, covered
}

// RedactTranscribe rewrites an AWS Transcribe JSON transcript: every
// entity in a "transcript" text (results.transcripts[], audio_segments[])
// is replaced in the text, and every word item an entity covers (in
// results.items and in each channel's items) gets the replacement as its
// content. Timings, speakers, confidences and all other fields are kept.
// It returns the new document and the number of entities replaced in item
// lists.
func RedactTranscribe(data []byte, d *detect.Detector, repl Replacer) ([]byte, int, error) {
	t, err := parseTranscribe(data)
	if err != nil {
		return nil, 0, err
	}
	return t.redact(d, repl)
}

// redact rewrites the parsed document in place and encodes it.
func (t *transcript) redact(d *detect.Detector, repl Replacer) ([]byte, int, error) {
	n := redactNode(t.results, d, repl)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(t.doc); err != nil {
		return nil, 0, err
	}
	return out.Bytes(), n, nil
}

// redactNode rewrites every "transcript" string and every list of word
// items under v, wherever the format puts them.
func redactNode(v any, d *detect.Detector, repl Replacer) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "transcript" {
				x[k] = replaceAll(s, d.Find(s), repl)
				continue
			}
			if list, ok := val.([]any); ok && k == "items" {
				if items, ok := wordItems(list); ok {
					n += redactItems(items, d, repl)
					continue
				}
			}
			n += redactNode(val, d, repl)
		}
	case []any:
		for _, e := range x {
			n += redactNode(e, d, repl)
		}
	}
	return n
}

// wordItems returns list as word items when its elements carry
// alternatives (speaker_labels' items carry only times and are left
// alone).
func wordItems(list []any) ([]map[string]any, bool) {
	var out []map[string]any
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		if _, ok := m["alternatives"]; !ok {
			return nil, false
		}
		out = append(out, m)
	}
	return out, len(out) > 0
}

func redactItems(items []map[string]any, d *detect.Detector, repl Replacer) int {
	spans, covered := itemSpans(items, d)
	text, _ := itemText(items)
	for k, s := range spans {
		r := repl(text[s.Start:s.End], s.Type)
		for _, i := range covered[k] {
			setContent(items[i], r)
		}
	}
	return len(spans)
}

// replaceAll returns s with each span replaced.
func replaceAll(s string, spans []detect.Span, repl Replacer) string {
	var b strings.Builder
	pos := 0
	for _, sp := range spans {
		b.WriteString(s[pos:sp.Start])
		b.WriteString(repl(s[sp.Start:sp.End], sp.Type))
		pos = sp.End
	}
	b.WriteString(s[pos:])
	return b.String()
}

// TimeRange is a stretch of a recording.
type TimeRange struct {
	Start, End time.Duration
	Type       detect.Type
}

// TranscribeTimes returns the time ranges of the word items that hold
// personal data in an AWS Transcribe JSON transcript.
func TranscribeTimes(data []byte, d *detect.Detector) ([]TimeRange, error) {
	t, err := parseTranscribe(data)
	if err != nil {
		return nil, err
	}
	return t.times(d), nil
}

// times is TranscribeTimes of a parsed transcript.
func (t *transcript) times(d *detect.Detector) []TimeRange {
	spans, covered := itemSpans(t.items, d)
	var out []TimeRange
	for k, idx := range covered {
		var r TimeRange
		r.Type = spans[k].Type
		first := true
		for _, i := range idx {
			st, ok1 := seconds(t.items[i]["start_time"])
			en, ok2 := seconds(t.items[i]["end_time"])
			if !ok1 || !ok2 {
				continue
			}
			if first || st < r.Start {
				r.Start = st
			}
			if first || en > r.End {
				r.End = en
			}
			first = false
		}
		if !first {
			out = append(out, r)
		}
	}
	return out
}

func seconds(v any) (time.Duration, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}
