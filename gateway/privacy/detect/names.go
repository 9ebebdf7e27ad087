package detect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// nameCues are the phrases after which a caller says a name.
var nameCues = [][]string{
	{"my", "name", "is"}, {"name's"}, {"this", "is"}, {"i", "am"}, {"i'm"}, {"speaking", "with"},
	{"me", "llamo"}, {"mi", "nombre", "es"}, {"meu", "nome", "é"}, {"meu", "nome", "e"},
	{"ich", "heiße"}, {"ich", "heisse"}, {"mein", "name", "ist"}, {"je", "m'appelle"}, {"je", "suis"},
	{"speak", "to"}, {"ask", "for"},
}

// titles precede a name.
var titles = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "miss": true, "dr": true, "mx": true, "sr": true, "sra": true,
	"srta": true, "herr": true, "frau": true, "mme": true, "mlle": true, "dona": true, "dom": true,
}

// notNames are capitalized words that follow a cue but are no name.
var notNames = map[string]bool{
	"calling": true, "sorry": true, "just": true, "not": true, "here": true, "the": true, "a": true,
	"i": true, "it": true, "from": true, "with": true, "your": true, "going": true, "trying": true,
	"looking": true, "afraid": true, "glad": true, "happy": true, "sure": true,
}

func capitalized(text string, t token) bool {
	r, _ := utf8.DecodeRuneInString(text[t.start:t.end])
	if !unicode.IsUpper(r) || notNames[t.lower] {
		return false
	}
	for _, c := range text[t.start:t.end] {
		if !unicode.IsLetter(c) && c != '\'' && c != '-' {
			return false
		}
	}
	return true
}

// findNames finds person names from context: after "my name is" and its
// kin in the regions' languages, and after titles. Best effort: a name said
// in lowercase by a transcriber, or without a cue, is missed.
func findNames(text string, toks []token, add func(Span)) {
	for i := range toks {
		score, next := 0.0, -1
		for _, cue := range nameCues {
			if i+len(cue) <= len(toks) && matchCue(toks[i:i+len(cue)], cue) {
				score, next = 0.7, i+len(cue)
				if len(cue) == 2 && (cue[0] == "this" || cue[0] == "i") || cue[0] == "i'm" {
					score = 0.55
				}
				break
			}
		}
		if next < 0 && titles[strings.TrimSuffix(toks[i].lower, ".")] && i+1 < len(toks) {
			score, next = 0.8, i+1
		}
		if next < 0 || next >= len(toks) || !capitalized(text, toks[next]) {
			continue
		}
		end := next
		for end+1 < len(toks) && end+1-next < 3 && capitalized(text, toks[end+1]) && !strings.ContainsAny(text[toks[end].end:toks[end+1].start], ".,;:!?\n") {
			end++
		}
		add(Span{Start: toks[next].start, End: toks[end].end, Type: PersonName, Score: score})
	}
}

func matchCue(toks []token, cue []string) bool {
	for k, w := range cue {
		if toks[k].lower != w {
			return false
		}
	}
	return true
}
