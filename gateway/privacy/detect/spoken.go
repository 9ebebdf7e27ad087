package detect

import (
	"strings"
	"unicode/utf8"
)

// numberWords maps number words of the regions' languages (English,
// Spanish, Portuguese, German, French) to their digit.
var numberWords = map[string]byte{
	"zero": '0', "oh": '0', "o": '0', "nought": '0', "one": '1', "two": '2', "three": '3', "four": '4',
	"five": '5', "six": '6', "seven": '7', "eight": '8', "nine": '9',
	"cero": '0', "uno": '1', "dos": '2', "tres": '3', "cuatro": '4', "cinco": '5', "seis": '6',
	"siete": '7', "ocho": '8', "nueve": '9',
	"um": '1', "uma": '1', "dois": '2', "duas": '2', "três": '3', "quatro": '4', "sete": '7',
	"oito": '8', "nove": '9', "meia": '6',
	"null": '0', "eins": '1', "zwei": '2', "zwo": '2', "drei": '3', "vier": '4', "fünf": '5',
	"fuenf": '5', "sechs": '6', "sieben": '7', "acht": '8', "neun": '9',
	"zéro": '0', "un": '1', "une": '1', "deux": '2', "trois": '3', "quatre": '4', "cinq": '5',
	"sept": '7', "huit": '8', "neuf": '9',
}

// repeatWords repeat the next digit: "double five" is 55.
var repeatWords = map[string]int{
	"double": 2, "triple": 3, "doble": 2, "triplo": 3, "duplo": 2, "doppel": 2, "doppelte": 2,
}

// fillerWords may sit between the digits of one spoken number.
var fillerWords = map[string]bool{
	"and": true, "uh": true, "um": true, "er": true, "erm": true, "y": true, "e": true, "und": true, "et": true,
	"eh": true, "ah": true, "dash": true, "hyphen": true,
}

func isKanjiDigit(r rune) bool {
	switch r {
	case '〇', '零', '一', '二', '三', '四', '五', '六', '七', '八', '九':
		return true
	}
	return false
}

func kanjiDigit(s string) (byte, bool) {
	r, size := utf8.DecodeRuneInString(s)
	if size != len(s) || !isKanjiDigit(r) {
		return 0, false
	}
	if r == '零' || r == '〇' {
		return '0', true
	}
	return byte('0' + strings.IndexRune("〇一二三四五六七八九", r)/len("一")), true
}

// tokenDigits returns the digits a token stands for, if any.
func tokenDigits(t token) (string, bool) {
	if d := t.info.digit; d != 0 {
		return digitStrings[d-'0'], true
	}
	if len(t.lower) <= 4 && isASCIIDigits(t.lower) {
		return t.lower, true // a short numeral among spoken digits: "four one five 555 ..."
	}
	return "", false
}

var digitStrings = [10]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// findSpoken finds numbers spoken as words ("four one five five five five
// one two one two", "oh", "double five"), in any mix with short numerals,
// and classifies what their digits spell.
func findSpoken(text string, toks []token, add func(Span)) {
	for i := 0; i < len(toks); {
		if t := toks[i]; t.info.digit == 0 && t.info.repeat == 0 && !isDigit(t.lower[0]) {
			i++ // the common case: a word that starts no number
			continue
		}
		var digits strings.Builder
		words, j, last := 0, i, -1
		repeat, prevEnd := 1, -1 // prevEnd: the end of the last token taken
		for j < len(toks) {
			t := toks[j]
			if prevEnd >= 0 && gapTooWide(text, prevEnd, t.start) {
				break
			}
			if r := t.info.repeat; r > 0 && j+1 < len(toks) {
				if _, next := tokenDigits(toks[j+1]); next {
					repeat, prevEnd = r, t.end
					j++
					continue
				}
			}
			if d, ok := tokenDigits(t); ok {
				for k := 0; k < repeat; k++ {
					digits.WriteString(d)
				}
				repeat = 1
				if t.info.digit != 0 {
					words++
				}
				last, prevEnd = j, t.end
				j++
				continue
			}
			if t.info.filler && last >= 0 && j+1 < len(toks) {
				if _, next := tokenDigits(toks[j+1]); next {
					prevEnd = t.end
					j++
					continue
				}
			}
			break
		}
		if last < 0 {
			i++
			continue
		}
		d := digits.String()
		if words >= 2 && len(d) >= 7 {
			start, end := toks[i].start, toks[last].end
			if s, ok := classifySpoken(text, toks[max(0, i-8):min(len(toks), last+4)], start, end, d); ok {
				add(s)
			}
		}
		i = last + 1
	}
}

// gapTooWide reports punctuation between two digit tokens that ends a
// number: a sentence end or a line break.
func gapTooWide(text string, from, to int) bool {
	gap := text[from:to]
	return strings.ContainsAny(gap, ".;:!?\n") || len(gap) > 6
}

func isASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// classifySpoken decides what the digits of a spoken number are. A spoken
// run of seven or more digits in a contact-center conversation is personal
// unless the words before it say otherwise (an order number, say).
func classifySpoken(text string, toks []token, start, end int, d string) (Span, bool) {
	before, after := tokensBefore(toks, start, 4), tokensAfter(toks, end, 1)
	if anyIn(before, negativeContext) || anyIn(after, unitWords) {
		return Span{}, false
	}
	span := func(t Type) (Span, bool) { return Span{Start: start, End: end, Type: t, Score: 0.85}, true }
	switch {
	case len(d) >= 13 && len(d) <= 19 && luhn(d):
		return span(Card)
	case anyIn(before, idContext) && len(d) >= 8:
		return span(NationalID)
	case anyIn(before, accountContext):
		return span(BankAccount)
	}
	return span(Phone)
}
