package detect

// wordInfo is what a word means to the scanners, looked up once per token
// (a transcript window has thousands of words, and one map lookup each is
// most of the cost of detection).
type wordInfo struct {
	digit  byte // '0'-'9' for a number word, else 0
	repeat int  // "double", "triple": how often the next digit repeats
	filler bool // may sit between the digits of one spoken number
	name   *nameStart
}

// plainWord is the info of every other word.
var plainWord = &wordInfo{}

// kanjiWords are the infos of the kanji digits, by digit.
var kanjiWords = func() (k [10]*wordInfo) {
	for i := range k {
		k[i] = &wordInfo{digit: byte('0' + i)}
	}
	return k
}()

// lookup returns the info of a lowercased word.
func lookup(w string) *wordInfo {
	if i, ok := words[w]; ok {
		return i
	}
	return plainWord
}

var words = func() map[string]*wordInfo {
	m := map[string]*wordInfo{}
	get := func(w string) *wordInfo {
		if m[w] == nil {
			m[w] = &wordInfo{}
		}
		return m[w]
	}
	for w, d := range numberWords {
		get(w).digit = d
	}
	for w, n := range repeatWords {
		get(w).repeat = n
	}
	for w := range fillerWords {
		get(w).filler = true
	}
	for w, s := range nameStarts {
		get(w).name = &s
	}
	return m
}()

// keyShapes marks the (length, first byte, last byte) of every word any
// scanner looks up, lowercased. A token whose shape is unmarked cannot be
// one of them, so it is neither lowercased nor looked up: most words of a
// transcript.
var keyShapes = func() *[32 * 128 * 128 / 64]uint64 {
	t := new([32 * 128 * 128 / 64]uint64)
	mark := func(w string) {
		if i, ok := shapeIndex(w); ok {
			t[i/64] |= 1 << (i % 64)
		}
	}
	for _, set := range []map[string]bool{negativeContext, accountContext, idContext, unitWords, titles, notNames, fillerWords} {
		for w := range set {
			mark(w)
		}
	}
	for w := range numberWords {
		mark(w)
	}
	for w := range repeatWords {
		mark(w)
	}
	for _, cue := range nameCues {
		for _, w := range cue {
			mark(w)
		}
	}
	return t
}()

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// shapeIndex returns the bit of s in keyShapes, and false when s is not
// ASCII at both ends or is 32 bytes or longer.
func shapeIndex(s string) (uint, bool) {
	first, last := s[0], s[len(s)-1]
	if len(s) >= 32 || first >= 128 || last >= 128 {
		return 0, false
	}
	return (uint(len(s))*128+uint(lowerASCII(first)))*128 + uint(lowerASCII(last)), true
}

// mayBeKeyword reports whether the token s could, lowercased, be a word
// some scanner looks up. Words with non-ASCII ends are always looked up.
func mayBeKeyword(s string) bool {
	i, ok := shapeIndex(s)
	if !ok {
		return len(s) < 32
	}
	return keyShapes[i/64]&(1<<(i%64)) != 0
}
