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

// nameStart is what a word can start: cues (by their first word) and
// titles, looked up once per word.
type nameStart struct {
	cues  [][]string
	title bool
}

var nameStarts = func() map[string]nameStart {
	m := map[string]nameStart{}
	for _, c := range nameCues {
		s := m[c[0]]
		s.cues = append(s.cues, c)
		m[c[0]] = s
	}
	for t := range titles {
		s := m[t]
		s.title = true
		m[t] = s
	}
	return m
}()

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
		start := toks[i].info.name
		if start == nil {
			continue
		}
		score, next := 0.0, -1
		for _, cue := range start.cues {
			if i+len(cue) <= len(toks) && matchCue(toks[i:i+len(cue)], cue) {
				score, next = 0.7, i+len(cue)
				if len(cue) == 2 && (cue[0] == "this" || cue[0] == "i") || cue[0] == "i'm" {
					score = 0.55
				}
				break
			}
		}
		if next < 0 && start.title && i+1 < len(toks) && isTitle(text, toks[i]) {
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

// isTitle reports whether t is written as a title: capitalized, and not
// part of an address or domain ("example.mx").
func isTitle(text string, t token) bool {
	r, _ := utf8.DecodeRuneInString(text[t.start:])
	if !unicode.IsUpper(r) {
		return false
	}
	return t.start == 0 || !strings.ContainsRune(".@/", rune(text[t.start-1]))
}

func matchCue(toks []token, cue []string) bool {
	for k, w := range cue {
		if toks[k].lower != w {
			return false
		}
	}
	return true
}
