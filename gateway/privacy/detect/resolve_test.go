package detect

import (
	"slices"
	"testing"
)

// TestResolveKeepsTheBestOfOverlappingFindings: findings come from several
// scanners in any order; of overlapping ones the longer wins, then the more
// certain, and the result is sorted and free of overlaps.
func TestResolveKeepsTheBestOfOverlappingFindings(t *testing.T) {
	in := []Span{
		{Start: 60, End: 70, Type: Phone, Score: 0.5},       // alone
		{Start: 40, End: 50, Type: NationalID, Score: 0.4},  // same length as the next,
		{Start: 45, End: 55, Type: BankAccount, Score: 0.9}, // which is more certain
		{Start: 2, End: 20, Type: Card, Score: 0.5},         // longer than the phone inside it
		{Start: 0, End: 10, Type: Phone, Score: 0.9},
		{Start: 19, End: 25, Type: Email, Score: 0.9}, // overlaps the card only
		{Start: 25, End: 30, Type: Email, Score: 0.9}, // touches, does not overlap
	}
	got := resolve(slices.Clone(in))
	want := []Span{in[3], in[6], in[2], in[0]}
	if !slices.Equal(got, want) {
		t.Fatalf("resolve =\n%v\nwant\n%v", got, want)
	}
}
