package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// denseShapes are JSON values that cost the most memory per byte once
// decoded: small objects, one-entry objects, nested objects, short
// arrays, numbers, and the smallest word items a transcript can have.
var denseShapes = map[string]string{
	"word items":    `{"alternatives":[{"content":"and"}]}`,
	"real items":    `{"start_time":"0.1","end_time":"0.4","alternatives":[{"confidence":"0.9","content":"call"}],"type":"pronunciation"}`,
	"empty objects": `{}`,
	"one entry":     `{"a":0}`,
	"nested":        `{"a":{"b":{}}}`,
	"arrays":        `[[0]]`,
	"numbers":       `0`,
	"strings":       `""`,
}

// shapeDoc is a transcript of about size bytes whose "x" field repeats el.
func shapeDoc(el string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"results":{"transcripts":[{"transcript":""}],"items":[]},"x":[`)
	b.WriteString(strings.Repeat(el+",", size/(len(el)+1)))
	b.WriteString(`0]}`)
	return b.Bytes()
}

// parseCost must bound what a parse really holds, or the memory a stream
// reserves for it (JSONMemory) would not.
func TestParseCostBoundsTheParse(t *testing.T) {
	for name, el := range denseShapes {
		doc := shapeDoc(el, 2<<20)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tr, err := parseTranscribe(doc)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(tr)
		live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		// parseTranscribe refuses what costs too much: measure those with
		// the decoder alone.
		if err != nil {
			if !errors.Is(err, ErrNotTranscript) {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		if cost := parseCost(doc); live > cost {
			t.Errorf("%s: a parse holds %d bytes, parseCost says at most %d", name, live, cost)
		}
	}
}

// Dense JSON that would take more than JSONMemory to parse is refused
// before it is parsed; real transcripts and the smallest word items are not.
func TestDenseJSONIsRefusedBeforeItIsParsed(t *testing.T) {
	for name, el := range denseShapes {
		doc := shapeDoc(el, 256<<10)
		_, err := parseTranscribe(doc)
		dense := parseCost(doc) > JSONMemory(int64(len(doc)))
		switch {
		case dense && !errors.Is(err, ErrNotTranscript):
			t.Errorf("%s (cost %.1fx): parsed, want refused", name, float64(parseCost(doc))/float64(len(doc)))
		case !dense && err != nil:
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"word items", "real items"} {
		if doc := shapeDoc(denseShapes[name], 256<<10); parseCost(doc) > JSONMemory(int64(len(doc))) {
			t.Errorf("%s: cost %.1fx exceeds the reservation", name, float64(parseCost(doc))/float64(len(doc)))
		}
	}
	if doc := shapeDoc(denseShapes["nested"], 256<<10); parseCost(doc) <= JSONMemory(int64(len(doc))) {
		t.Errorf("nested objects are within the reservation: the test shows nothing")
	}
}

// wordItems is a transcript of n word items, every other one a card number.
func wordItemsDoc(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"results":{"transcripts":[{"transcript":""}],"items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		w := "and"
		if i%2 == 0 {
			w = "4111111111111111"
		}
		fmt.Fprintf(&b, `{"start_time":"%d.0","end_time":"%d.5","alternatives":[{"content":"%s"}],"type":"pronunciation"}`, i, i, w)
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

// BenchmarkRedactTranscribe redacts transcripts of growing size, each word
// item of two an entity: the time per byte must stay flat (it grew with the
// square of the items before entities were mapped to items by binary
// search: 11 s for 4 MiB).
func BenchmarkRedactTranscribe(b *testing.B) {
	for _, items := range []int{10_000, 40_000} {
		doc := wordItemsDoc(items)
		b.Run(fmt.Sprintf("%d items", items), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				w := NewWriter(io.Discard, TranscribeJSON, all, Placeholders, nil)
				w.Write(doc)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
