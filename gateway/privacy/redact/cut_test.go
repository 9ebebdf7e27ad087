package redact

import (
	"strings"
	"testing"
	"time"
)

// TestHoldBackCutsAtTheBestBoundary pins where a full window is cut: the
// held-back overlap must start at a cue boundary if the look-back region
// has one, else at a line break, else after white space, and never inside
// the overlap itself (which the next window re-reads).
func TestHoldBackCutsAtTheBestBoundary(t *testing.T) {
	limit := window - overlap // the overlap starts here
	from := limit - overlap   // the look-back region is text[from:limit]
	with := func(marks map[int]string) string {
		b := []byte(strings.Repeat("x", window))
		for at, s := range marks {
			copy(b[at:], s)
		}
		return string(b)
	}
	cases := []struct {
		name  string
		marks map[int]string
		want  int
	}{
		{"one long token: cut at the overlap", nil, limit},
		{"a blank line wins over a later line break", map[int]string{from + 10: "\n\n", limit - 5: "\n"}, from + 12},
		{"the last blank line", map[int]string{from + 10: "\n\n", from + 100: "\n\n"}, from + 102},
		{"a line break wins over later spaces", map[int]string{from + 20: "\n", limit - 3: " "}, from + 21},
		{"the last line break", map[int]string{from + 20: "\n", from + 40: "\n"}, from + 41},
		{"a line break inside the overlap is not used", map[int]string{from + 20: " ", limit: "\n\n"}, from + 21},
		{"a space just before the overlap", map[int]string{limit - 1: " "}, limit},
		{"a space at the start of the look-back", map[int]string{from: " "}, from + 1},
		{"a space before the look-back is not used", map[int]string{from - 1: " "}, limit},
		{"a tab counts as white space", map[int]string{from + 7: "\t"}, from + 8},
		{"a carriage return counts as white space", map[int]string{from + 9: "\r"}, from + 10},
		{"a blank line at the very end of the look-back", map[int]string{limit - 2: "\n\n"}, limit},
		{"a blank line at the very start of the look-back", map[int]string{from: "\n\n"}, from + 2},
		{"a line break at the very start of the look-back", map[int]string{from: "\n"}, from + 1},
	}
	for _, c := range cases {
		if got := holdBack(with(c.marks)); got != c.want {
			t.Errorf("%s: cut at %d, want %d", c.name, got, c.want)
		}
	}
}

func TestParseVTTTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"00:01.500", 1500 * time.Millisecond, true},
		{"01:02.250", time.Minute + 2250*time.Millisecond, true},
		{"75:00.000", 75 * time.Minute, true}, // minutes are unbounded without hours
		{"1:02:03.004", time.Hour + 2*time.Minute + 3004*time.Millisecond, true},
		{"1:59:59.999", time.Hour + 59*time.Minute + 59999*time.Millisecond, true},
		{"00:00.000", 0, true},
		{"1:60:00.000", 0, false}, // minutes past 59 after hours
		{"00:60.000", 0, false},
		{"00:59.999", 59999 * time.Millisecond, true},
		{"-1:00.000", 0, false},
		{"00:-1.000", 0, false},
		{"1:2:3:4.000", 0, false},
		{"5.000", 0, false},
		{"aa:01.000", 0, false},
		{"00:bb", 0, false},
	}
	for _, c := range cases {
		got, ok := parseVTTTime(c.in)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("parseVTTTime(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseCueTiming(t *testing.T) {
	cases := []struct {
		in         string
		start, end time.Duration
		ok         bool
	}{
		{"00:01.000 --> 00:04.500", time.Second, 4500 * time.Millisecond, true},
		{"00:01.000 --> 00:04.500 align:start position:10%", time.Second, 4500 * time.Millisecond, true},
		{"01:00:01.000-->01:00:02.000", time.Hour + time.Second, time.Hour + 2*time.Second, true},
		{"00:04.000 --> 00:04.000", 4 * time.Second, 4 * time.Second, true}, // empty cue
		{"00:04.000 --> 00:01.000", 0, 0, false},                            // ends before it starts
		{"00:01.000 -->", 0, 0, false},
		{"00:01.000 00:02.000", 0, 0, false},
		{"xx --> 00:02.000", 0, 0, false},
		{"00:01.000 --> yy", 0, 0, false},
	}
	for _, c := range cases {
		got, ok := parseCueTiming(c.in)
		if ok != c.ok || ok && (got.Start != c.start || got.End != c.end) {
			t.Errorf("parseCueTiming(%q) = %+v, %v; want %v..%v, %v", c.in, got, ok, c.start, c.end, c.ok)
		}
	}
}
