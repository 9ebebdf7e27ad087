package detect

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
)

// The byte scanners replace patterns that were too slow over whole
// transcripts; these differential tests hold them to the patterns on
// random text made of the characters that matter.

var (
	oracleDigitRun = regexp.MustCompile(`\+?\(?\d(?:\d|[ .\-/()]\d|\) ?\d){5,}`)
	oracleEmail    = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)
	oracleNRIC     = regexp.MustCompile(`\b[STFGM]\d{7}[A-Z]\b`)
)

func randomText(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestDigitRunsMatchThePattern(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		text := randomText(r, "0123456789 .-/()+a", 5+r.IntN(40))
		var got [][]int
		digitRuns(text, func(s, e int) { got = append(got, []int{s, e}) })
		want := oracleDigitRun.FindAllStringIndex(text, -1)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("case %d %q: scanner %v, pattern %v", i, text, got, want)
		}
	}
}

func TestEmailsMatchThePattern(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		text := randomText(r, "ab9.-_%+@ xyZ", 3+r.IntN(30))
		var got [][]int
		emails(text, func(s, e int) { got = append(got, []int{s, e}) })
		want := oracleEmail.FindAllStringIndex(text, -1)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("case %d %q: scanner %v, pattern %v", i, text, got, want)
		}
	}
}

func TestNRICCandidatesMatchThePattern(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 20000 {
		text := randomText(r, "STFGMA0123456789 x", 9+r.IntN(20))
		var got [][]int
		alnumIDs(text, func(int, int) {}, func(s, e int) { got = append(got, []int{s, e}) }, func(int, int) {})
		want := oracleNRIC.FindAllStringIndex(text, -1)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("case %d %q: scanner %v, pattern %v", i, text, got, want)
		}
	}
}

func TestTokenizeAndKanjiDigits(t *testing.T) {
	text := "Order 〇九〇, don't wait; Tschüß 42 FÜNF"
	toks := tokenize(text, nil)
	var words, lowers []string
	for _, tk := range toks {
		words = append(words, text[tk.start:tk.end])
		lowers = append(lowers, tk.lower)
	}
	if fmt.Sprint(words) != "[Order 〇 九 〇 don't wait Tschüß 42 FÜNF]" {
		t.Fatalf("tokens %q", words)
	}
	// Words a scanner looks up are lowercased (and known); others are kept.
	if lowers[0] != "order" || lowers[8] != "fünf" || toks[8].info.digit != '5' || toks[2].info.digit != '9' || lowers[5] != "wait" {
		t.Fatalf("lowered %q", lowers)
	}
	for s, want := range map[string]byte{"〇": '0', "零": '0', "一": '1', "九": '9'} {
		if d, ok := kanjiDigit(s); !ok || d != want {
			t.Errorf("kanjiDigit(%q) = %c, %v", s, d, ok)
		}
	}
	if _, ok := kanjiDigit("十"); ok {
		t.Error("十 is not a digit")
	}
	if _, ok := kanjiDigit("一二"); ok {
		t.Error("two kanji are not one digit")
	}
}

func TestIsDate(t *testing.T) {
	for s, want := range map[string]bool{
		"2024-03-15": true, "15/03/2024": true, "3.15.24": true, "2024-3-5": true,
		"2024-03/15": false, "12345-1-1": false, "1-2": false, "1-2-3-4": false, "12-34-5": false, "2024-123-1": false,
	} {
		if isDate(s) != want {
			t.Errorf("isDate(%q) = %v", s, !want)
		}
	}
}
