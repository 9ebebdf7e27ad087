// Package audio silences spans of a WAV recording, sample-accurately and
// without re-encoding: PCM 8/16/24/32-bit, 32/64-bit float, G.711 mu-law and
// A-law, any number of channels and any sample rate. Every byte outside the
// silenced sample frames is copied unchanged, and the RIFF structure
// (chunk order, odd chunk sizes and their pad bytes, LIST and other chunks)
// is kept. It streams: memory is one buffer whatever the recording's size.
//
// Compressed audio (MP3, Opus, AAC, ADPCM in WAV) cannot be silenced
// without a codec; Probe and Silence refuse it with ErrUnsupported.
package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Errors.
var (
	// ErrNotWAV means the content is not a RIFF/WAVE file.
	ErrNotWAV = errors.New("audio: not a RIFF/WAVE file")
	// ErrUnsupported means a WAV whose encoding cannot be silenced without
	// a codec (or an RF64 file).
	ErrUnsupported = errors.New("audio: unsupported WAV encoding (want PCM, float, mu-law or A-law)")
)

// Encoding is how a WAV stores samples.
type Encoding int

// Encodings.
const (
	PCM Encoding = iota + 1
	Float
	MuLaw
	ALaw
)

func (e Encoding) String() string {
	return [...]string{"?", "pcm", "float", "mu-law", "a-law"}[max(0, min(int(e), 4))]
}

// Format is a WAV's fmt chunk.
type Format struct {
	Encoding      Encoding
	Channels      int
	SampleRate    int
	BitsPerSample int
	// BlockAlign is the size of one frame (a sample of every channel).
	BlockAlign int
}

// silentByte is the byte every byte of a silent sample holds: zero for
// signed PCM and float (little-endian zero), 0x80 for unsigned 8-bit PCM,
// and the G.711 codes of zero.
func (f Format) silentByte() byte {
	switch {
	case f.Encoding == PCM && f.BitsPerSample == 8:
		return 0x80
	case f.Encoding == MuLaw:
		return 0xFF
	case f.Encoding == ALaw:
		return 0xD5
	}
	return 0
}

// WAVE format tags.
const (
	tagPCM        = 1
	tagFloat      = 3
	tagALaw       = 6
	tagMuLaw      = 7
	tagExtensible = 0xFFFE
)

func parseFmt(b []byte) (Format, error) {
	if len(b) < 16 {
		return Format{}, fmt.Errorf("%w: fmt chunk of %d bytes", ErrNotWAV, len(b))
	}
	tag := binary.LittleEndian.Uint16(b[0:])
	f := Format{
		Channels:      int(binary.LittleEndian.Uint16(b[2:])),
		SampleRate:    int(binary.LittleEndian.Uint32(b[4:])),
		BlockAlign:    int(binary.LittleEndian.Uint16(b[12:])),
		BitsPerSample: int(binary.LittleEndian.Uint16(b[14:])),
	}
	if tag == tagExtensible {
		if len(b) < 40 {
			return Format{}, fmt.Errorf("%w: short WAVE_FORMAT_EXTENSIBLE", ErrNotWAV)
		}
		tag = binary.LittleEndian.Uint16(b[24:]) // the sub-format GUID's first field
	}
	switch {
	case tag == tagPCM && slices.Contains([]int{8, 16, 24, 32}, f.BitsPerSample):
		f.Encoding = PCM
	case tag == tagFloat && (f.BitsPerSample == 32 || f.BitsPerSample == 64):
		f.Encoding = Float
	case tag == tagMuLaw && f.BitsPerSample == 8:
		f.Encoding = MuLaw
	case tag == tagALaw && f.BitsPerSample == 8:
		f.Encoding = ALaw
	default:
		return Format{}, fmt.Errorf("%w: format tag %#x, %d bits", ErrUnsupported, tag, f.BitsPerSample)
	}
	if f.Channels < 1 || f.SampleRate < 1 || f.BlockAlign != f.Channels*f.BitsPerSample/8 {
		return Format{}, fmt.Errorf("%w: %d channels, %d Hz, block align %d", ErrNotWAV, f.Channels, f.SampleRate, f.BlockAlign)
	}
	return f, nil
}

// maxFmt bounds the fmt chunk (40 bytes in practice).
const maxFmt = 4 << 10

// Span is a stretch of time to silence.
type Span struct {
	Start, End time.Duration
}

// Stats says what Silence did.
type Stats struct {
	Format Format
	// Spans is how many merged spans fell (at least partly) in the
	// recording; Frames how many sample frames were silenced.
	Spans  int
	Frames int64
}

// Silenced is the duration of the silenced frames.
func (s Stats) Silenced() time.Duration {
	if s.Format.SampleRate == 0 {
		return 0
	}
	return time.Duration(s.Frames * int64(time.Second) / int64(s.Format.SampleRate))
}

// frameRange is [start, end) in frames.
type frameRange struct{ start, end int64 }

// frames converts spans to merged, sorted frame ranges: a span covers
// every frame that overlaps it (start rounded down, end rounded up).
func frames(spans []Span, rate int) []frameRange {
	var out []frameRange
	for _, s := range spans {
		if s.End <= s.Start {
			continue
		}
		start := max(0, s.Start.Nanoseconds()) * int64(rate) / int64(time.Second)
		end := (s.End.Nanoseconds()*int64(rate) + int64(time.Second) - 1) / int64(time.Second)
		out = append(out, frameRange{start, end})
	}
	slices.SortFunc(out, func(a, b frameRange) int { return int(a.start - b.start) })
	var merged []frameRange
	for _, r := range out {
		if n := len(merged); n > 0 && r.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// Silence copies the WAV file in src to dst with every sample frame in
// spans silenced. It returns what it did; on error dst may hold part of
// the file.
func Silence(dst io.Writer, src io.Reader, spans []Span) (Stats, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	var st Stats
	head := make([]byte, 12)
	if _, err := io.ReadFull(br, head); err != nil {
		return st, ErrNotWAV
	}
	switch {
	case string(head[0:4]) == "RF64" || string(head[0:4]) == "BW64":
		return st, fmt.Errorf("%w: RF64", ErrUnsupported)
	case string(head[0:4]) != "RIFF" || string(head[8:12]) != "WAVE":
		return st, ErrNotWAV
	}
	if _, err := dst.Write(head); err != nil {
		return st, err
	}
	var (
		format *Format
		ranges []frameRange
	)
	for {
		// A short peek is the end of the file only when it says so: a read
		// error must fail the silencing, never pass for the end (the
		// redactor would store a truncated recording).
		rest, err := br.Peek(maxTrailer + 1)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return st, err
		}
		if len(rest) <= maxTrailer && trailer(rest) {
			// Zero padding or an ID3v1 tag after the last chunk: no audio.
			if _, err := dst.Write(rest); err != nil {
				return st, err
			}
			break
		}
		ch := make([]byte, 8)
		n, err := io.ReadFull(br, ch)
		if n == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err == io.ErrUnexpectedEOF { // io.ReadFull's own: the file ended
			// A few stray bytes after the last chunk: keep them as they are.
			_, werr := dst.Write(ch[:n])
			return st, werr
		}
		if err != nil {
			return st, err
		}
		if _, err := dst.Write(ch); err != nil {
			return st, err
		}
		id, size := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		if string(ch) == "\x00\x00\x00\x00\x00\x00\x00\x00" {
			// Zero padding longer than a trailer: kept if it is zeros to
			// the end.
			return st, copyZeros(dst, br)
		}
		if !chunkID(ch[0:4]) {
			// Sample data past what the data chunk's size says, most
			// likely: copying it unsilenced would pass speech through.
			return st, fmt.Errorf("%w: chunk id %q is not text (sample data beyond the data chunk's size?)", ErrNotWAV, ch[0:4])
		}
		switch id {
		case "fmt ":
			if size > maxFmt {
				return st, fmt.Errorf("%w: fmt chunk of %d bytes", ErrNotWAV, size)
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(br, b); err != nil {
				return st, fmt.Errorf("%w: short fmt chunk", ErrNotWAV)
			}
			f, err := parseFmt(b)
			if err != nil {
				return st, err
			}
			format, st.Format = &f, f
			ranges = frames(spans, f.SampleRate)
			if _, err := dst.Write(b); err != nil {
				return st, err
			}
		case "data":
			if format == nil {
				return st, fmt.Errorf("%w: data before fmt", ErrNotWAV)
			}
			next, err := br.Peek(maxTrailer + 1)
			if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
				return st, err
			}
			if size == 0xFFFFFFFF || size == 0 && len(next) > 0 && !trailer(next) {
				// A streamed WAV, or one whose recorder never wrote the
				// size it left at 0: players play such data to the end of
				// the file, so all of it is silenced as samples (metadata
				// after it too, which is harmless).
				size = -1
			}
			n, err := silenceData(dst, br, size, *format, ranges, &st)
			if err != nil {
				return st, err
			}
			size = n
		default:
			if _, err := io.CopyN(dst, br, size); err != nil {
				if errors.Is(err, io.EOF) {
					// Kept pending rather than passed through: what is
					// left may be samples that no size accounts for.
					return st, fmt.Errorf("%w: chunk %q runs past the end of the file", ErrNotWAV, id)
				}
				return st, err
			}
		}
		if size%2 == 1 {
			// The pad byte of an odd-sized chunk, when the file has one.
			if b, err := br.ReadByte(); err == nil {
				if _, err := dst.Write([]byte{b}); err != nil {
					return st, err
				}
			} else if err != io.EOF {
				return st, err
			}
		}
	}
	if format == nil {
		return st, fmt.Errorf("%w: no fmt chunk", ErrNotWAV)
	}
	return st, nil
}

// maxTrailer is the most a trailer after the last chunk can be.
const maxTrailer = 4 << 10

// trailer reports whether rest, all that is left of a file, is something
// tools append after the RIFF chunks that holds no audio: zero padding, or
// a 128-byte ID3v1 tag.
func trailer(rest []byte) bool {
	if len(rest) == 0 || len(rest) > maxTrailer {
		return false
	}
	if len(rest) == 128 && string(rest[:3]) == "TAG" {
		return true
	}
	for _, b := range rest {
		if b != 0 {
			return false
		}
	}
	return true
}

// copyZeros copies what is left of src to dst if it is all zero bytes, and
// fails at the first other byte: such bytes cannot be told from samples.
func copyZeros(dst io.Writer, src io.Reader) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("%w: bytes after zero padding (sample data beyond the data chunk's size?)", ErrNotWAV)
			}
		}
		if _, werr := dst.Write(buf[:n]); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// chunkID reports whether id can be a RIFF chunk id: four printable ASCII
// characters.
func chunkID(id []byte) bool {
	for _, c := range id {
		if c < 0x20 || c > 0x7E {
			return false
		}
	}
	return true
}

// silenceData copies size bytes of sample data (-1: to the end), silencing
// the frames in ranges. It returns how many bytes it copied.
func silenceData(dst io.Writer, src io.Reader, size int64, f Format, ranges []frameRange, st *Stats) (int64, error) {
	buf := make([]byte, 64<<10)
	block := int64(f.BlockAlign)
	silent := f.silentByte()
	var pos int64 // byte offset in the data
	counted := map[int]bool{}
	for size < 0 || pos < size {
		want := int64(len(buf))
		if size >= 0 {
			want = min(want, size-pos)
		}
		n, err := io.ReadFull(src, buf[:want])
		chunk := buf[:n]
		// Silence the part of each range inside [pos, pos+n).
		for i, r := range ranges {
			a, b := max(r.start*block, pos), min(r.end*block, pos+int64(n))
			if a >= b {
				continue
			}
			for k := a - pos; k < b-pos; k++ {
				chunk[k] = silent
			}
			if !counted[i] {
				counted[i] = true
				st.Spans++
			}
		}
		if _, werr := dst.Write(chunk); werr != nil {
			return pos, werr
		}
		pos += int64(n)
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				// A streamed WAV, or a truncated one (a recorder that died
				// before it fixed the size): its data ends with the file.
				// (Only io.ReadFull's own errors: a source's error that
				// wraps one is a failure, not the end.)
				break
			}
			return pos, err
		}
	}
	// Frames silenced: the ranges cut at the end of the data.
	total := pos / block
	for _, r := range ranges {
		st.Frames += max(0, min(r.end, total)-min(r.start, total))
	}
	return pos, nil
}

// Probe parses the start of a WAV file (up to its data chunk) and returns
// its format: it refuses what Silence cannot silence. head may be cut
// anywhere after the data chunk's header.
func Probe(head []byte) (Format, error) {
	if len(head) < 12 {
		return Format{}, ErrNotWAV
	}
	if s := string(head[0:4]); s == "RF64" || s == "BW64" {
		return Format{}, fmt.Errorf("%w: RF64", ErrUnsupported)
	}
	if string(head[0:4]) != "RIFF" || string(head[8:12]) != "WAVE" {
		return Format{}, ErrNotWAV
	}
	var format *Format
	for p := 12; p+8 <= len(head); {
		id, size := string(head[p:p+4]), int(binary.LittleEndian.Uint32(head[p+4:]))
		p += 8
		switch id {
		case "fmt ":
			if size > maxFmt || p+size > len(head) {
				return Format{}, fmt.Errorf("%w: fmt chunk", ErrNotWAV)
			}
			f, err := parseFmt(head[p : p+size])
			if err != nil {
				return Format{}, err
			}
			format = &f
		case "data":
			if format == nil {
				return Format{}, fmt.Errorf("%w: data before fmt", ErrNotWAV)
			}
			return *format, nil
		}
		p += size + size%2
	}
	return Format{}, fmt.Errorf("%w: no data chunk in the first %d bytes", ErrNotWAV, len(head))
}

// IsWAVType reports whether a content type names WAV.
func IsWAVType(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	switch ct {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return true
	}
	return false
}
