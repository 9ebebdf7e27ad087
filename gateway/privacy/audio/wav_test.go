package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"
	"time"
)

// fixture describes a generated WAV file.
type fixture struct {
	name       string
	tag        uint16 // format tag (0xFFFE: extensible, with subTag)
	subTag     uint16
	bits       int
	channels   int
	rate       int
	seconds    float64
	listBefore bool // an odd-sized LIST chunk before fmt/data
	listAfter  bool // a LIST chunk after data
	oddData    bool // an odd number of data bytes (8-bit mono), with its pad byte
}

// sample returns the encoded bytes of a tone's sample v (-1..1).
func encode(f fixture, v float64) []byte {
	tag := f.tag
	if tag == tagExtensible {
		tag = f.subTag
	}
	switch {
	case tag == tagPCM && f.bits == 8:
		return []byte{byte(128 + int(v*100))}
	case tag == tagPCM && f.bits == 16:
		return binary.LittleEndian.AppendUint16(nil, uint16(int16(v*30000)))
	case tag == tagPCM && f.bits == 24:
		x := int32(v * 8000000)
		return []byte{byte(x), byte(x >> 8), byte(x >> 16)}
	case tag == tagPCM && f.bits == 32:
		return binary.LittleEndian.AppendUint32(nil, uint32(int32(v*2e9)))
	case tag == tagFloat && f.bits == 32:
		return binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v)))
	case tag == tagFloat && f.bits == 64:
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))
	case tag == tagMuLaw, tag == tagALaw:
		// Any byte but the silent code: a tone of G.711 codes.
		return []byte{byte(0x10 + int((v+1)*50))}
	}
	return make([]byte, f.bits/8) // an encoding Silence refuses: any bytes

}

func chunk(id string, payload []byte) []byte {
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))...)
	b = append(b, payload...)
	if len(payload)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func (f fixture) build() []byte {
	fmtc := binary.LittleEndian.AppendUint16(nil, f.tag)
	fmtc = binary.LittleEndian.AppendUint16(fmtc, uint16(f.channels))
	fmtc = binary.LittleEndian.AppendUint32(fmtc, uint32(f.rate))
	block := f.channels * f.bits / 8
	fmtc = binary.LittleEndian.AppendUint32(fmtc, uint32(f.rate*block))
	fmtc = binary.LittleEndian.AppendUint16(fmtc, uint16(block))
	fmtc = binary.LittleEndian.AppendUint16(fmtc, uint16(f.bits))
	if f.tag == tagExtensible {
		fmtc = binary.LittleEndian.AppendUint16(fmtc, 22)
		fmtc = binary.LittleEndian.AppendUint16(fmtc, uint16(f.bits))
		fmtc = binary.LittleEndian.AppendUint32(fmtc, 3) // channel mask
		guid := []byte{0, 0, 0, 0, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
		binary.LittleEndian.PutUint16(guid, f.subTag)
		fmtc = append(fmtc, guid...)
	}
	frames := int(f.seconds * float64(f.rate))
	var data []byte
	for i := range frames {
		for c := range f.channels {
			v := 0.8 * math.Sin(2*math.Pi*440*float64(i)/float64(f.rate)+float64(c))
			data = append(data, encode(f, v)...)
		}
	}
	if f.oddData && len(data)%2 == 0 {
		data = append(data, encode(f, 0.5)...)
	}
	var body []byte
	body = append(body, "WAVE"...)
	if f.listBefore {
		body = append(body, chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00test\x00"))...) // 17 bytes: odd
	}
	body = append(body, chunk("fmt ", fmtc)...)
	body = append(body, chunk("data", data)...)
	if f.listAfter {
		body = append(body, chunk("LIST", []byte("INFOICMT\x06\x00\x00\x00hello\x00"))...)
	}
	return append(chunk("RIFF", body)[:8], body...)
}

var fixtures = []fixture{
	{name: "pcm8 mono 8k", tag: tagPCM, bits: 8, channels: 1, rate: 8000, seconds: 7, listBefore: true, oddData: true},
	{name: "pcm16 stereo 48k", tag: tagPCM, bits: 16, channels: 2, rate: 48000, seconds: 7, listAfter: true},
	{name: "pcm24 mono 44.1k", tag: tagPCM, bits: 24, channels: 1, rate: 44100, seconds: 7, listBefore: true, listAfter: true},
	{name: "pcm32 stereo 16k", tag: tagPCM, bits: 32, channels: 2, rate: 16000, seconds: 7},
	{name: "float32 stereo 22.05k", tag: tagFloat, bits: 32, channels: 2, rate: 22050, seconds: 7, listAfter: true},
	{name: "float64 mono 8k", tag: tagFloat, bits: 64, channels: 1, rate: 8000, seconds: 7},
	{name: "mu-law mono 8k", tag: tagMuLaw, bits: 8, channels: 1, rate: 8000, seconds: 7, listBefore: true, oddData: true},
	{name: "a-law stereo 8k", tag: tagALaw, bits: 8, channels: 2, rate: 8000, seconds: 7, listAfter: true},
	{name: "extensible pcm16 stereo 44.1k", tag: tagExtensible, subTag: tagPCM, bits: 16, channels: 2, rate: 44100, seconds: 7},
	{name: "extensible float32 mono 11.025k", tag: tagExtensible, subTag: tagFloat, bits: 32, channels: 1, rate: 11025, seconds: 7, listBefore: true},
}

// dataOffset finds the data chunk's payload in a fixture.
func dataOffset(t *testing.T, wav []byte) (int, int) {
	t.Helper()
	for p := 12; p+8 <= len(wav); {
		id, size := string(wav[p:p+4]), int(binary.LittleEndian.Uint32(wav[p+4:]))
		if id == "data" {
			return p + 8, size
		}
		p += 8 + size + size%2
	}
	t.Fatal("no data chunk")
	return 0, 0
}

// TestSilencesExactlyTheWidenedSpan silences a card number said between
// 2.0 s and 5.5 s, widened by 100 ms: every sample frame that overlaps
// 1.9-5.6 s is silent, and every other byte equals the original.
func TestSilencesExactlyTheWidenedSpan(t *testing.T) {
	span := Span{Start: 1900 * time.Millisecond, End: 5600 * time.Millisecond}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			in := f.build()
			var out bytes.Buffer
			st, err := Silence(&out, bytes.NewReader(in), []Span{span})
			if err != nil {
				t.Fatal(err)
			}
			got := out.Bytes()
			if len(got) != len(in) {
				t.Fatalf("%d bytes became %d", len(in), len(got))
			}
			off, size := dataOffset(t, in)
			block := f.channels * f.bits / 8
			first := int(int64(span.Start) * int64(f.rate) / int64(time.Second))
			last := int((int64(span.End)*int64(f.rate) + int64(time.Second) - 1) / int64(time.Second)) // exclusive
			silent := st.Format.silentByte()
			for i := range in {
				inData := i >= off && i < off+size
				frame := (i - off) / block
				if inData && frame >= first && frame < last {
					if got[i] != silent {
						t.Fatalf("byte %d (frame %d) = %#x, want silent %#x", i, frame, got[i], silent)
					}
					continue
				}
				if got[i] != in[i] {
					t.Fatalf("byte %d (outside the span) changed: %#x -> %#x", i, in[i], got[i])
				}
			}
			if st.Spans != 1 || st.Frames != int64(last-first) {
				t.Errorf("stats %+v, want 1 span of %d frames", st, last-first)
			}
			if d := st.Silenced(); d < 3700*time.Millisecond || d > 3701*time.Millisecond {
				t.Errorf("silenced %v, want 3.7 s", d)
			}
			if fm, err := Probe(in[:off]); err != nil || fm != st.Format {
				t.Errorf("Probe = %+v, %v; want %+v", fm, err, st.Format)
			}
		})
	}
}

func TestSilentValues(t *testing.T) {
	for f, want := range map[Format]byte{
		{Encoding: PCM, BitsPerSample: 8}:    0x80,
		{Encoding: PCM, BitsPerSample: 16}:   0x00,
		{Encoding: PCM, BitsPerSample: 24}:   0x00,
		{Encoding: Float, BitsPerSample: 32}: 0x00,
		{Encoding: MuLaw, BitsPerSample: 8}:  0xFF,
		{Encoding: ALaw, BitsPerSample: 8}:   0xD5,
	} {
		if got := f.silentByte(); got != want {
			t.Errorf("%v %d-bit: silent byte %#x, want %#x", f.Encoding, f.BitsPerSample, got, want)
		}
	}
}

func TestSpansOutsideAndOverlapping(t *testing.T) {
	f := fixtures[1]
	in := f.build()
	var out bytes.Buffer
	st, err := Silence(&out, bytes.NewReader(in), []Span{
		{Start: 1 * time.Second, End: 2 * time.Second}, {Start: 1500 * time.Millisecond, End: 2500 * time.Millisecond}, // merge
		{Start: 6900 * time.Millisecond, End: 60 * time.Second}, // past the end
		{Start: 3 * time.Second, End: 3 * time.Second},          // empty
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Spans != 2 || st.Frames != int64(1.5*48000)+int64(0.1*48000) {
		t.Fatalf("stats %+v", st)
	}
	if out.Len() != len(in) {
		t.Fatal("length changed")
	}
}

func TestRefusesWhatItCannotSilence(t *testing.T) {
	mp3 := fixture{name: "mp3 in wav", tag: 0x55, bits: 16, channels: 1, rate: 8000, seconds: 0.1}
	adpcm := fixture{name: "adpcm", tag: 0x11, bits: 16, channels: 1, rate: 8000, seconds: 0.1}
	for _, f := range []fixture{mp3, adpcm} {
		if _, err := Silence(io.Discard, bytes.NewReader(f.build()), nil); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", f.name, err)
		}
		if _, err := Probe(f.build()); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Probe %s: %v", f.name, err)
		}
	}
	for name, b := range map[string][]byte{
		"ogg":    []byte("OggS\x00\x02" + string(make([]byte, 100))),
		"empty":  nil,
		"rf64":   []byte("RF64\xff\xff\xff\xffWAVEds64"),
		"no fmt": chunk("RIFF", append([]byte("WAVE"), chunk("data", []byte{1, 2})...)),
	} {
		if _, err := Silence(io.Discard, bytes.NewReader(b), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := Probe(b); err == nil {
			t.Errorf("Probe %s: accepted", name)
		}
	}
	if !IsWAVType("audio/wav") || !IsWAVType("Audio/X-WAV; codecs=1") || IsWAVType("audio/mpeg") || IsWAVType("video/mp4") {
		t.Error("IsWAVType")
	}
}

// A streamed WAV (data size 0xFFFFFFFF) is silenced to its end.
func TestStreamedDataSize(t *testing.T) {
	f := fixtures[0]
	in := f.build()
	off, _ := dataOffset(t, in)
	binary.LittleEndian.PutUint32(in[off-4:], 0xFFFFFFFF)
	var out bytes.Buffer
	st, err := Silence(&out, bytes.NewReader(in), []Span{{Start: 6 * time.Second, End: 8 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames == 0 || out.Len() != len(in) || out.Bytes()[len(in)-3] != 0x80 {
		t.Fatalf("stats %+v, %d bytes", st, out.Len())
	}
}

// BenchmarkSilenceTwoHourStereo streams a 2-hour stereo 16-bit 48 kHz
// recording (about 1.3 GiB) through Silence and reports the heap it needed.
func BenchmarkSilenceTwoHourStereo(b *testing.B) {
	f := fixture{tag: tagPCM, bits: 16, channels: 2, rate: 48000, seconds: 0.01}
	head := f.build()
	off, _ := dataOffset(&testing.T{}, head)
	const size = 2 * 3600 * 48000 * 4
	binary.LittleEndian.PutUint32(head[off-4:], size)
	binary.LittleEndian.PutUint32(head[4:], uint32(size+off-8))
	spans := []Span{}
	for s := 60; s < 7200; s += 300 {
		spans = append(spans, Span{Start: time.Duration(s) * time.Second, End: time.Duration(s+4) * time.Second})
	}
	b.SetBytes(size)
	for b.Loop() {
		src := io.MultiReader(bytes.NewReader(head[:off]), io.LimitReader(zeros{}, size))
		if _, err := Silence(io.Discard, src, spans); err != nil {
			b.Fatal(err)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A data chunk that declares more than the file holds (a recorder that
// died) is silenced to the end of the file; so is one of size 0 followed
// by anything but a trailer (players play it to the end); one of size 0 at
// the end of the file, or followed by zero padding or an ID3v1 tag, is
// empty, and the trailer is kept.
func TestTruncatedAndEmptyData(t *testing.T) {
	f := fixtures[1]
	in := f.build()
	off, size := dataOffset(t, in)
	cut := in[:off+size/2]
	var out bytes.Buffer
	st, err := Silence(&out, bytes.NewReader(cut), []Span{{Start: 0, End: time.Hour}})
	if err != nil || out.Len() != len(cut) || st.Frames != int64(size/2/4) {
		t.Fatalf("truncated: %+v, %v, %d bytes", st, err, out.Len())
	}
	empty := append(append([]byte{}, in[:off-4]...), 0, 0, 0, 0)
	id3 := append([]byte("TAG"), bytes.Repeat([]byte{'x'}, 125)...)
	for _, tail := range [][]byte{nil, make([]byte, 100), id3} {
		in := append(append([]byte{}, empty...), tail...)
		out.Reset()
		if _, err := Silence(&out, bytes.NewReader(in), []Span{{Start: 0, End: time.Hour}}); err != nil || !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("empty data chunk, then %d bytes of trailer: %v, changed %v", len(tail), err, !bytes.Equal(out.Bytes(), in))
		}
	}
	list := append(append([]byte{}, empty...), chunk("LIST", []byte("INFOICMT\x04\x00\x00\x00abc\x00"))...)
	out.Reset()
	if _, err := Silence(&out, bytes.NewReader(list), []Span{{Start: 0, End: time.Hour}}); err != nil || out.Len() != len(list) || bytes.Equal(out.Bytes(), list) {
		t.Fatalf("data chunk of size 0 then a LIST chunk: %v, %d bytes, changed %v; want it all silenced as samples", err, out.Len(), !bytes.Equal(out.Bytes(), list))
	}
}

// TestFramesSortsAndMergesSpansInAnyOrder: spans come from transcripts in
// any order; each is silenced whole, touching ones merge, and a later
// span never swallows an earlier one.
func TestFramesSortsAndMergesSpansInAnyOrder(t *testing.T) {
	ms := func(a, b int) Span {
		return Span{Start: time.Duration(a) * time.Millisecond, End: time.Duration(b) * time.Millisecond}
	}
	got := frames([]Span{ms(5000, 6000), ms(1000, 2000), ms(3000, 4000), ms(2000, 2500)}, 1000)
	want := []frameRange{{1000, 2500}, {3000, 4000}, {5000, 6000}}
	if !slices.Equal(got, want) {
		t.Fatalf("frames = %v, want %v", got, want)
	}
}

// Recorders that write a placeholder data size of 0 and patch it at the
// end leave 0 when they die; players play such data to the end of the
// file. Those samples are silenced like any others, not copied as the
// body of a chunk no size accounts for (second review: 3 s of speech left
// unsilenced and the recording marked redacted). Bytes after the data
// chunk that cannot be chunks, or a chunk that runs past the end of the
// file, fail the silencing, which keeps the recording pending, instead of
// being passed through.
func TestSamplesNoSizeAccountsForAreSilencedOrRefused(t *testing.T) {
	f := fixtures[1]
	in := f.build()
	off, size := dataOffset(t, in)
	samples := bytes.Repeat([]byte{0x55}, size)
	unpatched := append(append(append([]byte{}, in[:off-4]...), 0, 0, 0, 0), samples...)
	var out bytes.Buffer
	st, err := Silence(&out, bytes.NewReader(unpatched), []Span{{Start: 0, End: time.Hour}})
	if err != nil || bytes.Contains(out.Bytes()[off:], []byte{0x55}) || out.Len() != len(unpatched) {
		t.Fatalf("data size 0 followed by samples: %+v, %v; %d of %d sample bytes left as they were",
			st, err, bytes.Count(out.Bytes()[off:], []byte{0x55}), size)
	}

	// A data size that says half of what follows: the rest cannot be read
	// as chunks, and is not copied as if it were one.
	short := append([]byte{}, in[:off+size]...)
	binary.LittleEndian.PutUint32(short[off-4:], uint32(size/2))
	for i := off + size/2; i < len(short); i++ {
		short[i] = 0x05
	}
	out.Reset()
	if _, err := Silence(&out, bytes.NewReader(short), []Span{{Start: 0, End: time.Hour}}); !errors.Is(err, ErrNotWAV) {
		t.Fatalf("samples past the data chunk's size: %v; want ErrNotWAV", err)
	}
	// A known chunk after a data chunk of size 0 does not hide the samples
	// its size covers (third review).
	junk := append(append([]byte{}, in[:off-4]...), 0, 0, 0, 0)
	junk = append(junk, "JUNK"...)
	junk = binary.LittleEndian.AppendUint32(junk, uint32(size))
	junk = append(junk, samples...)
	out.Reset()
	if _, err := Silence(&out, bytes.NewReader(junk), []Span{{Start: 0, End: time.Hour}}); err != nil || bytes.Count(out.Bytes()[off+8:], []byte{0x55}) != 0 {
		t.Fatalf("data size 0, then a JUNK chunk over the samples: %v, %d sample bytes left", err, bytes.Count(out.Bytes()[off+8:], []byte{0x55}))
	}
	// Zero padding and an ID3v1 tag after the last chunk are kept as they
	// are (third review: they made redaction fail for good).
	for _, tail := range [][]byte{make([]byte, 64), append([]byte("TAG"), bytes.Repeat([]byte{'y'}, 125)...)} {
		padded := append(append([]byte{}, in...), tail...)
		out.Reset()
		if _, err := Silence(&out, bytes.NewReader(padded), nil); err != nil || !bytes.Equal(out.Bytes(), padded) {
			t.Fatalf("a WAV then %d bytes of trailer: %v", len(tail), err)
		}
	}
	// A LIST chunk cut short at the end of the file.
	cut := append(append([]byte{}, in[:off+size]...), chunk("LIST", []byte("INFOICMT\x04\x00\x00\x00abc\x00"))...)
	cut = cut[:len(cut)-6]
	out.Reset()
	if _, err := Silence(&out, bytes.NewReader(cut), []Span{{Start: 0, End: time.Hour}}); !errors.Is(err, ErrNotWAV) {
		t.Fatalf("a chunk running past the end of the file: %v; want ErrNotWAV", err)
	}
}

// failingReader fails every read, as a broken connection to the store does.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// A source that fails is an error wherever it fails, never the end of the
// file: the redactor would store the truncated copy as the recording and
// shred the original (fourth review). Zero padding of any length after the
// last chunk is kept.
func TestReadErrorsFailTheSilencing(t *testing.T) {
	in := fixtures[1].build() // a LIST chunk after the data
	off, size := dataOffset(t, in)
	padded := append(append([]byte{}, in...), make([]byte, 16<<10)...)
	for name, src := range map[string]io.Reader{
		"at a chunk boundary after fmt":  io.MultiReader(bytes.NewReader(in[:off-8]), failingReader{}),
		"at a chunk boundary after data": io.MultiReader(bytes.NewReader(in[:off+size]), failingReader{}),
		"in zero padding":                io.MultiReader(bytes.NewReader(padded[:len(in)+100]), failingReader{}),
		"in long zero padding":           io.MultiReader(bytes.NewReader(padded[:len(in)+12<<10]), failingReader{}),
	} {
		var out bytes.Buffer
		if _, err := Silence(&out, src, nil); err == nil {
			t.Errorf("source failing %s: no error, %d of %d bytes written", name, out.Len(), len(in))
		}
	}
	for _, n := range []int{4097, 16 << 10, 200 << 10} {
		long := append(append([]byte{}, in...), make([]byte, n)...)
		var out bytes.Buffer
		if _, err := Silence(&out, bytes.NewReader(long), nil); err != nil || !bytes.Equal(out.Bytes(), long) {
			t.Errorf("%d bytes of zero padding: %v", n, err)
		}
	}
	tail := append(append(append([]byte{}, in...), make([]byte, 8<<10)...), 0x55)
	var out bytes.Buffer
	if _, err := Silence(&out, bytes.NewReader(tail), nil); !errors.Is(err, ErrNotWAV) {
		t.Errorf("zero padding then a sample byte: %v, want ErrNotWAV", err)
	}
}

// onceFailing returns err once after its data, then io.EOF: a source whose
// failure could pass for the end of the file if only the next call were
// looked at.
type onceFailing struct {
	r      io.Reader
	err    error
	failed bool
}

func (o *onceFailing) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err == io.EOF && !o.failed {
		o.failed = true
		return n, o.err
	}
	return n, err
}

// A source error that wraps io.ErrUnexpectedEOF (as a store client's
// does) in the middle of the samples is a failure, not the end of a
// truncated file, even if the source says io.EOF after it (fifth review).
func TestWrappedUnexpectedEOFIsAFailure(t *testing.T) {
	in := fixtures[1].build()
	off, size := dataOffset(t, in)
	src := &onceFailing{r: bytes.NewReader(in[:off+size/2]), err: fmt.Errorf("store: read: %w", io.ErrUnexpectedEOF)}
	var out bytes.Buffer
	if _, err := Silence(&out, src, []Span{{Start: 0, End: time.Hour}}); err == nil {
		t.Fatalf("a source failing mid-samples: no error, %d of %d bytes written", out.Len(), len(in))
	}
}
