// Package detect finds personal data in text: phone numbers of the eight
// regions (US, AU, BR, CA, DE, JP, MX, SG), payment cards, email addresses,
// national ids, IBANs, numbers spoken as words, and person names from
// context. It knows neither gRPC nor storage: redaction at ingest, masking
// on read and the time spans of audio redaction all use it.
//
// Structured entities are found by candidate scanners and confirmed by
// their checksums (Luhn, mod 97, the national-id algorithms) or by
// libphonenumber's metadata (github.com/nyaruka/phonenumbers), biased to
// recall: a phone-shaped number that is merely possible counts. What looks
// similar but is not personal (dates, times, amounts, durations, order and
// ticket numbers) is left alone by shape and by the words before it.
package detect

import (
	"slices"
	"strings"
	"sync"
)

// Type is a kind of personal data.
type Type int

// Entity types.
const (
	Phone Type = iota + 1
	Card
	Email
	NationalID
	BankAccount
	PersonName
)

// AllTypes lists every type.
var AllTypes = []Type{Phone, Card, Email, NationalID, BankAccount, PersonName}

// Placeholder returns the text that replaces an entity of type t in
// redacted content.
func (t Type) Placeholder() string {
	switch t {
	case Phone:
		return "[PHONE NUMBER]"
	case Card:
		return "[CARD NUMBER]"
	case Email:
		return "[EMAIL ADDRESS]"
	case NationalID:
		return "[NATIONAL ID]"
	case BankAccount:
		return "[BANK ACCOUNT]"
	case PersonName:
		return "[NAME]"
	}
	return "[PII]"
}

func (t Type) String() string {
	return strings.Trim(strings.ReplaceAll(t.Placeholder(), " ", "_"), "[]")
}

// Span is one entity found in a text: the bytes text[Start:End].
type Span struct {
	Start, End int
	Type       Type
	// Score is the confidence, 0 to 1: checksummed entities near 1, names
	// from context lower.
	Score float64
}

// Detector finds the entities of chosen types. It is safe for concurrent
// use.
type Detector struct {
	want [PersonName + 1]bool
}

// New returns a Detector of types (every type when none is given).
func New(types ...Type) *Detector {
	if len(types) == 0 {
		types = AllTypes
	}
	d := &Detector{}
	for _, t := range types {
		if t >= Phone && t <= PersonName {
			d.want[t] = true
		}
	}
	return d
}

// Find returns the entities in text, sorted and not overlapping (of two
// overlapping findings the longer, then the more certain, wins).
func (d *Detector) Find(text string) []Span {
	var all []Span
	add := func(s Span) {
		if d.want[s.Type] && s.End > s.Start {
			all = append(all, s)
		}
	}
	if d.want[Email] {
		findEmails(text, add)
	}
	if d.want[BankAccount] || d.want[NationalID] {
		findAlnumIDs(text, add)
	}
	buf := tokenPool.Get().(*[]token)
	toks := tokenize(text, *buf)
	findDigitRuns(text, toks, add)
	findSpoken(text, toks, add)
	if d.want[PersonName] {
		findNames(text, toks, add)
	}
	*buf = toks[:0]
	tokenPool.Put(buf)
	return resolve(all)
}

// tokenPool keeps token slices from one Find to the next: a window of
// transcript has thousands of words.
var tokenPool = sync.Pool{New: func() any { return new([]token) }}

// resolve sorts spans and drops those that overlap a better one: of
// overlapping findings the longer, then the more certain, wins. Spans are
// taken in clusters of mutual overlap, so the work stays linear in the
// number of findings.
func resolve(spans []Span) []Span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b Span) int { return a.Start - b.Start })
	var kept []Span
	for i := 0; i < len(spans); {
		j, end := i+1, spans[i].End
		for j < len(spans) && spans[j].Start < end {
			end = max(end, spans[j].End)
			j++
		}
		kept = append(kept, best(spans[i:j])...)
		i = j
	}
	return kept
}

// best resolves one cluster of overlapping spans, in order of start.
func best(cluster []Span) []Span {
	if len(cluster) == 1 {
		return cluster
	}
	byRank := slices.Clone(cluster)
	slices.SortStableFunc(byRank, func(a, b Span) int {
		if la, lb := a.End-a.Start, b.End-b.Start; la != lb {
			return lb - la
		}
		if a.Score > b.Score {
			return -1
		}
		if a.Score < b.Score {
			return 1
		}
		return 0
	})
	var kept []Span
	for _, s := range byRank {
		if !slices.ContainsFunc(kept, func(k Span) bool { return s.Start < k.End && k.Start < s.End }) {
			kept = append(kept, s)
		}
	}
	slices.SortFunc(kept, func(a, b Span) int { return a.Start - b.Start })
	return kept
}
