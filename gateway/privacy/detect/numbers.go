package detect

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Regions are the regions whose phone number plans are checked.
var Regions = []string{"US", "AU", "BR", "CA", "DE", "JP", "MX", "SG"}

// token is a word or number of a text, with its byte offsets.
type token struct {
	start, end int
	lower      string
}

// tokenize splits text into runs of letters and digits (Unicode), plus
// single kanji digits, keeping byte offsets.
func tokenize(text string) []token {
	var out []token
	start := -1
	for i, r := range text {
		word := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\''
		if isKanjiDigit(r) {
			if start >= 0 {
				out = append(out, token{start, i, strings.ToLower(text[start:i])})
				start = -1
			}
			out = append(out, token{i, i + utf8.RuneLen(r), string(r)})
			continue
		}
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			out = append(out, token{start, i, strings.ToLower(text[start:i])})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, token{start, len(text), strings.ToLower(text[start:])})
	}
	return out
}

// tokensBefore returns up to n tokens that end at or before pos.
func tokensBefore(toks []token, pos, n int) []token {
	i := len(toks)
	for i > 0 && toks[i-1].end > pos {
		i--
	}
	return toks[max(0, i-n):i]
}

// tokensAfter returns up to n tokens that start at or after pos.
func tokensAfter(toks []token, pos, n int) []token {
	i := 0
	for i < len(toks) && toks[i].start < pos {
		i++
	}
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

// digitRunRE finds numbers with the separators people and transcribers put
// in phone, card and id numbers.
var digitRunRE = regexp.MustCompile(`\+?\(?\d(?:[\d]|[ .\-/()]\d|\) ?\d){5,}`)

var (
	dateRE   = regexp.MustCompile(`^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$`)
	ssnRE    = regexp.MustCompile(`^\d{3}-\d{2}-\d{4}$`)
	threeRE  = regexp.MustCompile(`^\d{3}[ -]\d{3}[ -]\d{3}$`)
	cpfRE    = regexp.MustCompile(`^\d{3}\.\d{3}\.\d{3}-\d{2}$`)
	fourRE   = regexp.MustCompile(`^\d{4}[ -]\d{4}[ -]\d{4}$`)
	steuerRE = regexp.MustCompile(`^\d{2} ?\d{3} ?\d{3} ?\d{3}$`)
)

// findDigitRuns classifies every number written with digits.
func findDigitRuns(text string, toks []token, add func(Span)) {
	for _, m := range digitRunRE.FindAllStringIndex(text, -1) {
		start, end := m[0], m[1]
		raw := text[start:end]
		// A run glued to letters (an id like AB1234567) is not ours.
		if start > 0 && isWordByte(text[start-1]) || end < len(text) && isWordByte(text[end]) {
			continue
		}
		if s, ok := classifyNumber(text, toks, start, end, raw, digitsOf(raw)); ok {
			add(s)
		}
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// classifyNumber decides what the number text[start:end] (digits d) is,
// from its shape, its checksums and the words around it.
func classifyNumber(text string, toks []token, start, end int, raw, d string) (Span, bool) {
	before, after := tokensBefore(toks, start, 4), tokensAfter(toks, end, 1)
	if anyIn(before, negativeContext) || start > 0 && strings.ContainsRune("#№", rune(text[start-1])) {
		return Span{}, false
	}
	if dateRE.MatchString(raw) || anyIn(after, unitWords) || currencyBefore(text, start) {
		return Span{}, false
	}
	span := func(t Type, score float64) (Span, bool) { return Span{Start: start, End: end, Type: t, Score: score}, true }
	idCtx := anyIn(before, idContext)
	switch {
	case ssnRE.MatchString(raw) && validSSN(d):
		return span(NationalID, 0.9)
	case cpfRE.MatchString(raw) && validCPF(d):
		return span(NationalID, 0.95)
	case threeRE.MatchString(raw) && (validSIN(d) || validTFN(d)):
		return span(NationalID, 0.85)
	case fourRE.MatchString(raw) && validMyNumber(d):
		return span(NationalID, 0.85)
	case len(d) >= 13 && len(d) <= 19 && luhn(d) && consistentSeparators(raw):
		return span(Card, 0.95)
	case idCtx && len(d) == 9 && (validSSN(d) || validSIN(d) || validTFN(d)),
		idCtx && len(d) == 11 && (validCPF(d) || validSteuerID(d)),
		idCtx && len(d) == 12 && validMyNumber(d),
		steuerRE.MatchString(raw) && len(d) == 11 && validSteuerID(d) && idCtx:
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
		n, err := phonenumbers.Parse(raw, "")
		return err == nil && phonenumbers.IsPossibleNumber(n)
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
