package detect

import "regexp"

// Candidate scanners. Go's regexp runs a whole transcript through an NFA
// for each pattern, which is far too slow for redaction at ingest; these
// find candidates with byte tests, and the patterns only confirm them,
// anchored, on a few dozen bytes.

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// digitRuns calls fn with the bounds of every number written with the
// separators people and transcribers put in phone, card and id numbers:
// what the pattern \+?\(?\d(?:\d|[ .\-/()]\d|\) ?\d){5,} matches, leftmost
// first, without overlaps.
func digitRuns(text string, fn func(start, end int)) {
	for i := 0; i < len(text); {
		c := text[i]
		if !isDigit(c) && c != '+' && c != '(' {
			i++
			continue
		}
		if end, ok := digitRunAt(text, i); ok {
			fn(i, end)
			i = end
			continue
		}
		i++
	}
}

func digitRunAt(text string, i int) (int, bool) {
	j := i
	if j < len(text) && text[j] == '+' {
		j++
	}
	if j < len(text) && text[j] == '(' {
		j++
	}
	if j >= len(text) || !isDigit(text[j]) {
		return 0, false
	}
	j++
	reps := 0
	for j < len(text) {
		switch c := text[j]; {
		case isDigit(c):
			j++
		case (c == ' ' || c == '.' || c == '-' || c == '/' || c == '(' || c == ')') && j+1 < len(text) && isDigit(text[j+1]):
			j += 2
		case c == ')' && j+2 < len(text) && text[j+1] == ' ' && isDigit(text[j+2]):
			j += 3
		default:
			return j, reps >= 5
		}
		reps++
	}
	return j, reps >= 5
}

var (
	curpAt = regexp.MustCompile(`^[A-Z][AEIOUX][A-Z]{2}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[A-Z\d]\d`)
	ibanAt = regexp.MustCompile(`^[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}`)
)

// alnumIDs calls fn with the candidates for CURPs, NRIC/FINs and IBANs:
// words that start with capital letters and digits in their shapes.
func alnumIDs(text string, curp, nric, iban func(start, end int)) {
	for i := 0; i+9 <= len(text); i++ {
		c := text[i]
		if !isUpper(c) || i > 0 && isWordByte(text[i-1]) {
			continue
		}
		c1 := text[i+1]
		if isUpper(c1) {
			w := text[i:min(len(text), i+80)]
			if m := curpAt.FindStringIndex(w); m != nil && wordEnd(text, i+m[1]) {
				curp(i, i+m[1])
			}
			if isDigit(text[i+2]) && isDigit(text[i+3]) {
				if m := ibanAt.FindStringIndex(w); m != nil {
					end := i + m[1]
					// The pattern is greedy: give back characters until the
					// IBAN ends at a word boundary.
					for end > i+15 && !wordEnd(text, end) {
						end--
					}
					if wordEnd(text, end) {
						iban(i, end)
					}
				}
			}
		}
		if isDigit(c1) && (c == 'S' || c == 'T' || c == 'F' || c == 'G' || c == 'M') {
			j := i + 1
			for j < i+8 && isDigit(text[j]) {
				j++
			}
			if j == i+8 && isUpper(text[j]) && wordEnd(text, j+1) {
				nric(i, j+1)
			}
		}
	}
}

func wordEnd(text string, end int) bool { return end >= len(text) || !isWordByte(text[end]) }

// emails calls fn with every email address: a local part, '@', and a
// domain of dot-separated labels ending in a top-level domain of letters.
func emails(text string, fn func(start, end int)) {
	for at := 0; at < len(text); {
		k := indexByte(text[at:], '@')
		if k < 0 {
			return
		}
		at += k
		start := at
		for start > 0 && isLocalByte(text[start-1]) {
			start--
		}
		end, tld := at+1, -1
		for end < len(text) && isDomainByte(text[end]) {
			end++
		}
		// The address ends with the last label of two or more letters
		// that follows a dot.
		for p := at + 1; p < end; p++ {
			if text[p] != '.' {
				continue
			}
			if p == at+1 || text[p-1] == '.' {
				break // an empty label ends the domain
			}
			q := p + 1
			for q < end && isLetter(text[q]) {
				q++
			}
			if q-p-1 >= 2 && p > at+1 {
				tld = q // the address ends after the last run of letters that follows a dot
			}
		}
		if start < at && tld > 0 {
			fn(start, tld)
			at = tld
			continue
		}
		at++
	}
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

func isLetter(b byte) bool     { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
func isDomainByte(b byte) bool { return isLetter(b) || isDigit(b) || b == '-' || b == '.' }
func isLocalByte(b byte) bool  { return isDomainByte(b) || b == '_' || b == '%' || b == '+' }
