package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/privacy/detect"
)

var all = detect.New()

// run writes in through a redacting writer in pieces of random sizes.
func run(t testing.TB, f Format, in string, repl Replacer, seed uint64) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, f, all, repl, nil)
	r := rand.New(rand.NewPCG(seed, 1))
	for rest := in; rest != ""; {
		n := min(len(rest), 1+r.IntN(100<<10))
		if _, err := w.Write([]byte(rest[:n])); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestWindowNeverSplitsAnEntity puts entities across every window boundary
// of a long text, written in random pieces: each is replaced whole, and the
// output is the same as redacting the text at once.
func TestWindowNeverSplitsAnEntity(t *testing.T) {
	values := []string{"4111 1111 1111 1111", "555-555-5555", "jane.doe@example.com", "DE89 3704 0044 0532 0130 00",
		"four one five five five five one two one two"}
	var b strings.Builder
	filler := "the customer asked about the delivery window and the agent checked the schedule again "
	for i := 0; b.Len() < 1<<20; i++ {
		// Land a value on each 64 KiB boundary, at shifting offsets.
		next := (b.Len()/window + 1) * window
		for b.Len() < next-10-i%20 {
			b.WriteString(filler[:min(len(filler), next-10-i%20-b.Len())])
		}
		b.WriteString(" " + values[i%len(values)] + " ")
	}
	in := b.String()
	for seed := range uint64(5) {
		out := run(t, PlainText, in, Placeholders, seed)
		for _, v := range values {
			if strings.Contains(out, v) || strings.Contains(out, v[:len(v)-3]) || strings.Contains(out, v[3:]) {
				t.Fatalf("seed %d: a piece of %q survived", seed, v)
			}
		}
		if out != oneShot(t, PlainText, in) {
			t.Fatalf("seed %d: streamed output differs from redacting at once", seed)
		}
	}
}

// TestWindowIsBounded writes megabytes without a line break or a space:
// the writer holds at most a window and a piece, whatever the size.
func TestWindowIsBounded(t *testing.T) {
	w := NewWriter(io.Discard, PlainText, all, Placeholders, nil).(*textWriter)
	piece := bytes.Repeat([]byte("a"), 32<<10)
	for range 256 { // 8 MiB
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
		if cap(w.buf) > 2*window+len(piece) {
			t.Fatalf("buffer grew to %d bytes", cap(w.buf))
		}
	}
}

// oneShot redacts in as a single window: the reference that streaming
// must match.
func oneShot(t *testing.T, f Format, in string) string {
	t.Helper()
	var out bytes.Buffer
	w := &textWriter{dst: &out, d: all, repl: Placeholders, vtt: f == WebVTT, res: &Result{}}
	if _, err := w.flush([]byte(in), true); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// A long WebVTT document streamed in random pieces reads the same as when
// redacted in one go, and keeps every timing line and cue identifier.
func TestWebVTTStreamsLikeOneShot(t *testing.T) {
	var b strings.Builder
	b.WriteString("WEBVTT\n\n")
	says := []string{"my number is four one five", "five five five one two one two", "the card is 4111 1111 1111 1111",
		"and my email is jane.doe@example.com", "thanks, that is all for today"}
	for i := 0; b.Len() < 600<<10; i++ {
		fmt.Fprintf(&b, "%d\n00:%02d:%02d.000 --> 00:%02d:%02d.500\n%s\n\n", i+1, i/60%60, i%60, i/60%60, i%60, says[i%len(says)])
	}
	in := b.String()
	want := oneShot(t, WebVTT, in)
	for seed := range uint64(3) {
		if out := run(t, WebVTT, in, Placeholders, seed); out != want {
			t.Fatalf("seed %d: streamed WebVTT differs from one-shot redaction", seed)
		}
	}
	if strings.Contains(want, "4111 1111") || strings.Contains(want, "four one five") || strings.Contains(want, "jane.doe") {
		t.Fatal("values survived")
	}
	inLines, outLines := strings.Split(in, "\n"), strings.Split(want, "\n")
	if len(inLines) != len(outLines) {
		t.Fatalf("%d lines became %d", len(inLines), len(outLines))
	}
	for i, l := range inLines {
		if (strings.Contains(l, "-->") || l == "" || strings.Trim(l, "0123456789") == "") && outLines[i] != l {
			t.Fatalf("line %d %q became %q", i, l, outLines[i])
		}
	}
}

func TestWebVTTKeepsTimings(t *testing.T) {
	var res Result
	in := "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.500\nAgent: can I have your number?\n\n" +
		"2\n00:00:04.500 --> 00:00:09.250\nCustomer: sure it's 415 555 0134 and my card\n\n" +
		"3\n00:00:09.250 --> 00:00:12.000\nCustomer: is 4111 1111 1111 1111, email a.b@example.com\n"
	var out bytes.Buffer
	w := NewWriter(&out, WebVTT, all, Placeholders, &res)
	w.Write([]byte(in))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The cues that held the values, for audio redaction.
	wantTimes := []TimeRange{{Start: 4500 * time.Millisecond, End: 9250 * time.Millisecond, Type: detect.Phone},
		{Start: 9250 * time.Millisecond, End: 12 * time.Second, Type: detect.Card}, {Start: 9250 * time.Millisecond, End: 12 * time.Second, Type: detect.Email}}
	if !res.Timed || res.Count != 3 || fmt.Sprint(res.Times) != fmt.Sprint(wantTimes) {
		t.Errorf("result %+v, want times %v", res, wantTimes)
	}
	want := strings.NewReplacer("415 555 0134", "[PHONE NUMBER]", "4111 1111 1111 1111", "[CARD NUMBER]",
		"a.b@example.com", "[EMAIL ADDRESS]").Replace(in)
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// A number said across two cues is removed from both, and the timing line
// between them stays.
func TestWebVTTEntityAcrossCues(t *testing.T) {
	in := "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nmy number is four one five five\n\n00:00:02.000 --> 00:00:03.000\nfive five one two one two\n"
	out := run(t, WebVTT, in, Placeholders, 1)
	if strings.Contains(out, "four") || strings.Contains(out, "one two") {
		t.Fatalf("spoken number survived: %q", out)
	}
	for _, timing := range []string{"00:00:01.000 --> 00:00:02.000", "00:00:02.000 --> 00:00:03.000", "WEBVTT"} {
		if !strings.Contains(out, timing) {
			t.Fatalf("lost %q: %q", timing, out)
		}
	}
}

const transcribeDoc = `{"jobName":"call-1","accountId":"123456789012","status":"COMPLETED","results":{
 "transcripts":[{"transcript":"My card is 4111 1111 1111 1111. Thanks."}],
 "audio_segments":[{"id":0,"transcript":"My card is 4111 1111 1111 1111. Thanks.","start_time":"0.5","end_time":"6.0","items":[0,1,2,3,4,5,6,7,8]}],
 "speaker_labels":{"speakers":1,"segments":[{"start_time":"0.5","end_time":"6.0","speaker_label":"spk_0","items":[{"start_time":"0.5","end_time":"0.8","speaker_label":"spk_0"}]}]},
 "items":[
  {"start_time":"0.5","end_time":"0.8","alternatives":[{"confidence":"0.99","content":"My"}],"type":"pronunciation"},
  {"start_time":"0.8","end_time":"1.1","alternatives":[{"confidence":"0.99","content":"card"}],"type":"pronunciation"},
  {"start_time":"1.1","end_time":"1.3","alternatives":[{"confidence":"0.99","content":"is"}],"type":"pronunciation"},
  {"start_time":"1.4","end_time":"2.0","alternatives":[{"confidence":"0.98","content":"4111"}],"type":"pronunciation"},
  {"start_time":"2.1","end_time":"2.7","alternatives":[{"confidence":"0.98","content":"1111"}],"type":"pronunciation"},
  {"start_time":"2.8","end_time":"3.4","alternatives":[{"confidence":"0.97","content":"1111"}],"type":"pronunciation"},
  {"start_time":"3.5","end_time":"4.2","alternatives":[{"confidence":"0.97","content":"1111"}],"type":"pronunciation"},
  {"alternatives":[{"confidence":"0.0","content":"."}],"type":"punctuation"},
  {"start_time":"5.0","end_time":"5.6","alternatives":[{"confidence":"0.99","content":"Thanks"}],"type":"pronunciation"}
 ]}}`

func TestTranscribeJSONKeepsStructureAndTimings(t *testing.T) {
	out := run(t, TranscribeJSON, transcribeDoc, Placeholders, 1)
	if strings.Contains(out, "4111") {
		t.Fatalf("card survived: %s", out)
	}
	var before, after map[string]any
	if err := json.Unmarshal([]byte(transcribeDoc), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &after); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	items := func(doc map[string]any) []any { return doc["results"].(map[string]any)["items"].([]any) }
	bi, ai := items(before), items(after)
	if len(bi) != len(ai) {
		t.Fatalf("%d items became %d", len(bi), len(ai))
	}
	for i := range bi {
		b, a := bi[i].(map[string]any), ai[i].(map[string]any)
		if b["start_time"] != a["start_time"] || b["end_time"] != a["end_time"] || b["type"] != a["type"] {
			t.Fatalf("item %d: timing changed: %v -> %v", i, b, a)
		}
		content := a["alternatives"].([]any)[0].(map[string]any)["content"]
		if i >= 3 && i <= 6 && content != "[CARD NUMBER]" || i < 3 && content != b["alternatives"].([]any)[0].(map[string]any)["content"] {
			t.Fatalf("item %d content %v", i, content)
		}
	}
	res := after["results"].(map[string]any)
	if tr := res["transcripts"].([]any)[0].(map[string]any)["transcript"]; tr != "My card is [CARD NUMBER]. Thanks." {
		t.Fatalf("transcript %q", tr)
	}
	if seg := res["audio_segments"].([]any)[0].(map[string]any); seg["transcript"] != "My card is [CARD NUMBER]. Thanks." || seg["start_time"] != "0.5" {
		t.Fatalf("audio segment %v", seg)
	}
	if after["jobName"] != "call-1" || res["speaker_labels"] == nil {
		t.Fatal("other fields were not kept")
	}
	times, err := TranscribeTimes([]byte(transcribeDoc), all)
	if err != nil || len(times) != 1 || times[0].Start != 1400*time.Millisecond || times[0].End != 4200*time.Millisecond {
		t.Fatalf("times %v, %v", times, err)
	}
}

func TestTranscribeJSONRefusesOtherJSONAndHugeDocuments(t *testing.T) {
	w := NewWriter(io.Discard, TranscribeJSON, all, Placeholders, nil)
	w.Write([]byte(`{"hello":"world"}`))
	if err := w.Close(); err == nil {
		t.Fatal("JSON that is not a transcript was accepted")
	}
	w = NewWriter(io.Discard, TranscribeJSON, all, Placeholders, nil)
	big := bytes.Repeat([]byte(" "), 1<<20)
	var err error
	for i := 0; i <= MaxJSON>>20 && err == nil; i++ {
		_, err = w.Write(big)
	}
	if err != ErrTooLarge {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
}

func TestMaskKeepsStructure(t *testing.T) {
	m := Mask(MaskConfig{Keep: 4})
	for _, c := range []struct {
		v    string
		t    detect.Type
		want string
	}{
		{"1234-1234-1234-1234", detect.Card, "XXXX-XXXX-XXXX-1234"},
		{"(415) 555-0134", detect.Phone, "(XXX) XXX-0134"},
		{"jane.doe@example.com", detect.Email, "jXXXXXXX@example.com"},
		{"Maria Gonzalez", detect.PersonName, "MXXXX GXXXXXXX"},
		{"123-45-6789", detect.NationalID, "XXX-XX-6789"},
	} {
		if got := m(c.v, c.t); got != c.want {
			t.Errorf("Mask(%q) = %q, want %q", c.v, got, c.want)
		}
	}
	if got := Mask(MaskConfig{Char: '*', Keep: 2})("4111 1111 1111 1111", detect.Card); got != "**** **** **** **11" {
		t.Errorf("custom mask: %q", got)
	}
	if got := Mask(MaskConfig{Char: '#', Keep: 0})("555-0134", detect.Phone); got != "###-####" {
		t.Errorf("keep 0: %q", got)
	}
}

func TestFormatOf(t *testing.T) {
	for ct, want := range map[string]Format{"text/plain; charset=utf-8": PlainText, "text/vtt": WebVTT, "application/json": TranscribeJSON} {
		if f, ok := FormatOf(ct); !ok || f != want {
			t.Errorf("FormatOf(%q) = %v, %v", ct, f, ok)
		}
	}
	for _, ct := range []string{"audio/wav", "application/pdf", "image/png"} {
		if _, ok := FormatOf(ct); ok {
			t.Errorf("FormatOf(%q) accepted", ct)
		}
	}
}

// transcriptText is contact-center text: mostly conversation, a personal
// value every few lines, as a real transcript has.
func transcriptText(size int) []byte {
	lines := []string{
		"Agent: Thank you for calling, how can I help you today?\n",
		"Customer: Hi, I'm calling about my last invoice, it looks higher than usual.\n",
		"Agent: I can look into that. Can you confirm the phone number on the account?\n",
		"Customer: Sure, it's 415-555-0134.\n",
		"Agent: Thanks. I see the order 4829338122 shipped on 2024-03-15 at 10:30.\n",
		"Customer: Right, and I paid with the card ending 1111, the full number is 4111 1111 1111 1111.\n",
		"Agent: Got it. The call has lasted 12 minutes; I will email you at jane.doe@example.com.\n",
		"Customer: Great, my name is Maria Gonzalez by the way.\n",
	}
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		b.WriteString(lines[i%len(lines)])
	}
	return b.Bytes()[:size]
}

// BenchmarkRedactText measures redaction of transcript text on one core
// (the issue asks for >= 50 MiB/s per core); run with -cpu 1.
func BenchmarkRedactText(b *testing.B) {
	in := transcriptText(8 << 20)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		w := NewWriter(io.Discard, PlainText, all, Placeholders, nil)
		for p := in; len(p) > 0; p = p[min(len(p), 1<<20):] {
			w.Write(p[:min(len(p), 1<<20)])
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// Text dense with entities that hold spaces, and no line breaks: nearly
// every place a window can be cut (a space) is inside an entity, so the
// cut must move to the entity's start. Streamed output must equal one-shot
// redaction and hold none of the values.
func TestCutsInsideEntitiesMoveToTheirStart(t *testing.T) {
	values := []string{"4111 1111 1111 1111", "415 555 0134", "four one five five five five one two one two", "DE89 3704 0044 0532 0130 00"}
	var b strings.Builder
	for i := 0; b.Len() < 600<<10; i++ {
		b.WriteString(values[i%len(values)])
		b.WriteString(strings.Repeat(" ", 1+i%3))
	}
	in := b.String()
	want := oneShot(t, PlainText, in)
	for _, v := range values {
		if strings.Contains(want, v[len(v)-6:]) {
			t.Fatalf("one-shot redaction left %q", v)
		}
	}
	for seed := range uint64(4) {
		if got := run(t, PlainText, in, Placeholders, seed); got != want {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Fatalf("seed %d: streamed output differs at byte %d: %q vs %q", seed, i, got[max(0, i-40):min(len(got), i+40)], want[max(0, i-40):min(len(want), i+40)])
		}
	}
}
