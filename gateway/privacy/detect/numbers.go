package detect

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Regions are the regions whose phone number plans are checked.
var Regions = []string{"US", "AU", "BR", "CA", "DE", "JP", "MX", "SG"}

// token is a word or number of a text, with its byte offsets. lower is
// the word lowercased when it could be a word some scanner looks up
// (mayBeKeyword), else the word as written.
type token struct {
	start, end int
	lower      string
	info       *wordInfo
}

// tokenize splits text into runs of letters and digits (Unicode), plus
// single kanji digits, keeping byte offsets. ASCII, most of any
// transcript, takes a fast path.
func tokenize(text string, out []token) []token {
	out = out[:0]
	start := -1
	emit := func(end int) {
		t := token{start: start, end: end, lower: text[start:end], info: plainWord}
		if mayBeKeyword(t.lower) {
			t.lower = strings.ToLower(t.lower)
			t.info = lookup(t.lower)
		}
		out = append(out, t)
		start = -1
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			word := asciiWord[c]
			switch {
			case word && start < 0:
				start = i
			case !word && start >= 0:
				emit(i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if isKanjiDigit(r) {
			if start >= 0 {
				emit(i)
			}
			d, _ := kanjiDigit(text[i : i+size])
			out = append(out, token{start: i, end: i + size, lower: text[i : i+size], info: kanjiWords[d-'0']})
			i += size
			continue
		}
		word := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			emit(i)
		}
		i += size
	}
	if start >= 0 {
		emit(len(text))
	}
	return out
}

// asciiWord marks the ASCII bytes of words: letters, digits, apostrophe.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = isLetter(byte(c)) || isDigit(byte(c)) || c == '\''
	}
	return t
}()

// tokensBefore returns up to n tokens that end at or before pos.
func tokensBefore(toks []token, pos, n int) []token {
	i := sort.Search(len(toks), func(k int) bool { return toks[k].end > pos })
	return toks[max(0, i-n):i]
}

// tokensAfter returns up to n tokens that start at or after pos.
func tokensAfter(toks []token, pos, n int) []token {
	i := sort.Search(len(toks), func(k int) bool { return toks[k].start >= pos })
	return toks[i:min(len(toks), i+n)]
}

// negativeContext are words that, just before a number, say it is not
// personal: order, ticket and case numbers and the like.
var negativeContext = map[string]bool{
	"order": true, "ticket": true, "case": true, "ref": true, "reference": true, "invoice": true,
	"confirmation": true, "tracking": true, "booking": true, "reservation": true, "claim": true,
	"item": true, "sku": true, "model": true, "serial": true, "version": true, "room": true,
	"flight": true, "pnr": true, "incident": true, "request": true, "shipment": true, "parcel": true,
	"pedido": true, "bestellung": true, "auftrag": true, "commande": true, "protocolo": true, "folio": true,
	"chamado": true, "ticketnummer": true, "bestellnummer": true,
}

// accountContext are words that make a long number an account number.
var accountContext = map[string]bool{
	"account": true, "acct": true, "routing": true, "iban": true, "conta": true, "cuenta": true,
	"konto": true, "compte": true, "clabe": true, "bsb": true,
}

// idContext are words that make a number a national id.
var idContext = map[string]bool{
	"ssn": true, "social": true, "sin": true, "tfn": true, "cpf": true, "steuer": true, "steuerid": true,
	"idnr": true, "steueridentifikationsnummer": true, "mynumber": true, "nric": true, "fin": true, "curp": true,
	"insurance": true, "security": true, "tax": true,
}

// unitWords after a number make it a duration, an amount or a measure.
var unitWords = map[string]bool{
	"minutes": true, "minute": true, "mins": true, "min": true, "hours": true, "hour": true, "hrs": true,
	"seconds": true, "second": true, "secs": true, "days": true, "day": true, "weeks": true, "months": true,
	"years": true, "dollars": true, "dollar": true, "usd": true, "cents": true, "euros": true, "euro": true,
	"eur": true, "reais": true, "real": true, "brl": true, "pesos": true, "mxn": true, "yen": true, "jpy": true,
	"aud": true, "cad": true, "sgd": true, "percent": true, "kg": true, "km": true, "miles": true, "points": true,
	"minutos": true, "horas": true, "dias": true, "días": true, "minuten": true, "stunden": true, "tage": true,
}

func anyIn(toks []token, set map[string]bool) bool {
	for _, t := range toks {
		if set[t.lower] {
			return true
		}
	}
	return false
}

// shape returns raw with every digit written as 9 and '-' as ' ': the
// form the layouts of ids are compared in (cheaper than a pattern each).
func shape(raw string) string {
	b := []byte(raw)
	for i, c := range b {
		switch {
		case isDigit(c):
			b[i] = '9'
		case c == '-':
			b[i] = ' '
		}
	}
	return string(b)
}

// isDate reports a date: 2024-03-15, 15/03/2024, 3.15.24, with one kind of
// separator.
func isDate(raw string) bool {
	var groups [3]int
	n, sep := 0, byte(0)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if isDigit(c) {
			groups[n]++
			continue
		}
		if c != '-' && c != '/' && c != '.' || sep != 0 && c != sep || n == 2 {
			return false
		}
		sep = c
		n++
	}
	a, b, y := groups[0], groups[1], groups[2]
	return n == 2 && (a == 4 && b >= 1 && b <= 2 && y >= 1 && y <= 2 || a >= 1 && a <= 2 && b >= 1 && b <= 2 && y >= 2 && y <= 4)
}

// findDigitRuns classifies every number written with digits.
func findDigitRuns(text string, toks []token, add func(Span)) {
	lo := 0
	digitRuns(text, func(start, end int) {
		raw := text[start:end]
		// A run glued to letters (an id like AB1234567) is not ours.
		if start > 0 && isWordByte(text[start-1]) || end < len(text) && isWordByte(text[end]) {
			return
		}
		// Runs come in order: move a cursor to the first token of the run
		// and give the classifier just the tokens around it.
		for lo < len(toks) && toks[lo].end <= start {
			lo++
		}
		near := toks[max(0, lo-8):min(len(toks), lo+64)]
		if s, ok := classifyNumber(text, near, start, end, raw, digitsOf(raw)); ok {
			add(s)
		}
	})
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

func digitsOf(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// classifyNumber decides what the number text[start:end] (digits d) is,
// from its shape, its checksums and the words around it.
func classifyNumber(text string, toks []token, start, end int, raw, d string) (Span, bool) {
	before, after := tokensBefore(toks, start, 4), tokensAfter(toks, end, 1)
	if anyIn(before, negativeContext) || start > 0 && strings.ContainsRune("#№", rune(text[start-1])) {
		return Span{}, false
	}
	if isDate(raw) || anyIn(after, unitWords) || currencyBefore(text, start) {
		return Span{}, false
	}
	span := func(t Type, score float64) (Span, bool) {
		return Span{Start: start, End: end, Type: t, Score: score}, true
	}
	idCtx := anyIn(before, idContext)
	sh := shape(raw)
	switch {
	case sh == "999 99 9999" && strings.Count(raw, "-") == 2 && validSSN(d):
		return span(NationalID, 0.9)
	case sh == "999.999.999 99" && validCPF(d):
		return span(NationalID, 0.95)
	case sh == "999 999 999" && (validSIN(d) || validTFN(d)):
		return span(NationalID, 0.85)
	case sh == "9999 9999 9999" && validMyNumber(d):
		return span(NationalID, 0.85)
	case len(d) >= 13 && len(d) <= 19 && luhn(d) && consistentSeparators(raw):
		return span(Card, 0.95)
	case idCtx && len(d) == 9 && (validSSN(d) || validSIN(d) || validTFN(d)),
		idCtx && len(d) == 11 && (validCPF(d) || validSteuerID(d)),
		idCtx && len(d) == 12 && validMyNumber(d),
		(sh == "99999999999" || sh == "99 999 999 999") && validSteuerID(d) && idCtx:
		return span(NationalID, 0.9)
	case anyIn(before, accountContext) && len(d) >= 6 && len(d) <= 34:
		return span(BankAccount, 0.8)
	case possiblePhone(raw, d):
		return span(Phone, 0.75)
	case idCtx && len(d) >= 8:
		return span(NationalID, 0.6)
	}
	return Span{}, false
}

// currencyBefore reports a currency sign just before pos.
func currencyBefore(text string, pos int) bool {
	lead := strings.TrimRight(text[max(0, pos-4):pos], " ")
	return strings.HasSuffix(lead, "$") || strings.HasSuffix(lead, "€") || strings.HasSuffix(lead, "£") ||
		strings.HasSuffix(lead, "¥") || strings.HasSuffix(lead, "R$")
}

// consistentSeparators reports a number written with at most one kind of
// separator (a card is 4-4-4-4 or 4 4 4 4, not a list of numbers).
func consistentSeparators(raw string) bool {
	seps := map[rune]bool{}
	for _, r := range raw {
		if r < '0' || r > '9' {
			seps[r] = true
		}
	}
	return len(seps) <= 1 && !seps['/'] && !seps['(']
}

// possiblePhone reports whether raw is a possible phone number of one of
// the regions (or international with +): recall first, so a merely
// possible number counts.
func possiblePhone(raw, d string) bool {
	if len(d) < 7 || len(d) > 15 {
		return false
	}
	if strings.HasPrefix(raw, "+") {
		// Written internationally, a number with a real country code is a
		// phone number even when the plan calls it impossible (Mexico's old
		// "+52 1" mobile prefix, say): recall first.
		n, err := phonenumbers.Parse(raw, "")
		if err != nil {
			return false
		}
		national := len(phonenumbers.GetNationalSignificantNumber(n))
		return phonenumbers.IsPossibleNumber(n) || national >= 6 && national <= 13
	}
	for _, region := range Regions {
		n, err := phonenumbers.Parse(raw, region)
		if err == nil && phonenumbers.IsPossibleNumber(n) {
			return true
		}
	}
	return false
}

// luhn checks the Luhn (mod 10) check digit of d.
func luhn(d string) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return len(d) > 1 && sum%10 == 0
}
