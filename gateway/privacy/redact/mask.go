package redact

import (
	"strings"
	"unicode"

	"github.com/sealgate/sealgate/gateway/privacy/detect"
)

// MaskConfig says how masking hides an entity, after Cloud DLP's character
// masking: Char replaces each hidden letter or digit, the last Keep letters
// or digits stay (separators always stay, so the structure shows).
type MaskConfig struct {
	Char rune
	Keep int
}

// Mask returns the Replacer of c: "1234-1234-1234-1234" becomes
// "XXXX-XXXX-XXXX-1234", an email keeps its first letter and its domain
// ("jXXXXXX@example.com"), a name its initials.
func Mask(c MaskConfig) Replacer {
	if c.Char == 0 {
		c.Char = 'X'
	}
	return func(v string, t detect.Type) string {
		switch t {
		case detect.Email:
			local, domain, ok := strings.Cut(v, "@")
			if !ok || local == "" {
				return maskKeep(v, c.Char, 0)
			}
			r := []rune(local)
			return string(r[0]) + strings.Repeat(string(c.Char), len(r)-1) + "@" + domain
		case detect.PersonName:
			var b strings.Builder
			first := true
			for _, r := range v {
				switch {
				case unicode.IsSpace(r) || r == '-':
					b.WriteRune(r)
					first = true
				case first:
					b.WriteRune(r)
					first = false
				default:
					b.WriteRune(c.Char)
				}
			}
			return b.String()
		}
		return maskKeep(v, c.Char, c.Keep)
	}
}

// maskKeep replaces every letter and digit of v with char but the last
// keep of them.
func maskKeep(v string, char rune, keep int) string {
	r := []rune(v)
	alnum := 0
	for _, c := range r {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			alnum++
		}
	}
	hide := alnum - keep
	for i, c := range r {
		if hide <= 0 {
			break
		}
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			r[i] = char
			hide--
		}
	}
	return string(r)
}
