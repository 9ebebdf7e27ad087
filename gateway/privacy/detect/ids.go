package detect

import (
	"math/big"
	"strings"
)

// validSSN applies the US Social Security number rules: area not 000, 666
// or 900-999; group not 00; serial not 0000.
func validSSN(d string) bool {
	if len(d) != 9 {
		return false
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// validSIN checks a Canadian Social Insurance Number: Luhn, and not
// starting with 8 (business numbers). 0 is kept: recall first, and it is
// the first digit of the published examples.
func validSIN(d string) bool {
	return len(d) == 9 && d[0] != '8' && luhn(d)
}

// validTFN checks an Australian Tax File Number (weighted sum mod 11).
func validTFN(d string) bool {
	if len(d) != 9 {
		return false
	}
	w := []int{1, 4, 3, 7, 5, 8, 6, 9, 10}
	sum := 0
	for i := range d {
		sum += int(d[i]-'0') * w[i]
	}
	return sum%11 == 0
}

// validCPF checks a Brazilian CPF's two check digits.
func validCPF(d string) bool {
	if len(d) != 11 || strings.Count(d, d[:1]) == 11 {
		return false
	}
	check := func(n int) int {
		sum := 0
		for i := 0; i < n; i++ {
			sum += int(d[i]-'0') * (n + 1 - i)
		}
		r := sum * 10 % 11
		if r == 10 {
			r = 0
		}
		return r
	}
	return check(9) == int(d[9]-'0') && check(10) == int(d[10]-'0')
}

// validSteuerID checks a German tax id (Steuerliche Identifikationsnummer):
// 11 digits, no leading 0, ISO 7064 MOD 11,10 check digit.
func validSteuerID(d string) bool {
	if len(d) != 11 || d[0] == '0' {
		return false
	}
	product := 10
	for i := 0; i < 10; i++ {
		sum := (int(d[i]-'0') + product) % 10
		if sum == 0 {
			sum = 10
		}
		product = sum * 2 % 11
	}
	check := 11 - product
	if check == 10 {
		check = 0
	}
	return check == int(d[10]-'0')
}

// validMyNumber checks a Japanese Individual Number (12 digits, the last a
// check digit).
func validMyNumber(d string) bool {
	if len(d) != 12 {
		return false
	}
	sum := 0
	for n := 1; n <= 11; n++ {
		p := int(d[11-n] - '0')
		q := n + 1
		if n > 6 {
			q = n - 5
		}
		sum += p * q
	}
	r := sum % 11
	check := 0
	if r > 1 {
		check = 11 - r
	}
	return check == int(d[11]-'0')
}

// validCURP checks a Mexican CURP's check digit.
func validCURP(s string) bool {
	// Values: digits 0-9, then A=10 ... N=23, Ñ=24, O=25 ... Z=36 (the
	// CURP regexp admits no Ñ, so O-Z shift by one).
	sum := 0
	for i := 0; i < 17; i++ {
		var v int
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'A' && c <= 'N':
			v = int(c-'A') + 10
		case c >= 'O' && c <= 'Z':
			v = int(c-'O') + 25
		default:
			return false
		}
		sum += v * (18 - i)
	}
	check := (10 - sum%10) % 10
	return check == int(s[17]-'0')
}

// validNRIC checks a Singapore NRIC or FIN check letter.
func validNRIC(s string) bool {
	w := []int{2, 7, 6, 5, 4, 3, 2}
	sum := 0
	for i := 0; i < 7; i++ {
		sum += int(s[1+i]-'0') * w[i]
	}
	var letters string
	switch s[0] {
	case 'S':
		letters = "JZIHGFEDCBA"
	case 'T':
		sum += 4
		letters = "JZIHGFEDCBA"
	case 'F':
		letters = "XWUTRQPNMLK"
	case 'G':
		sum += 4
		letters = "XWUTRQPNMLK"
	case 'M':
		sum += 3
		letters = "XWUTRQPNJLK"
	}
	return letters[sum%11] == s[8]
}

// validIBAN checks an IBAN's mod-97 check digits.
func validIBAN(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	rearranged := s[4:] + s[:4]
	var digits strings.Builder
	for _, r := range rearranged {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			digits.WriteString(big.NewInt(int64(r - 'A' + 10)).String())
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(digits.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

// findAlnumIDs finds CURPs, NRIC/FINs and IBANs (mod 97).
func findAlnumIDs(text string, add func(Span)) {
	alnumIDs(text,
		func(start, end int) {
			if validCURP(text[start:end]) {
				add(Span{Start: start, End: end, Type: NationalID, Score: 0.95})
			}
		},
		func(start, end int) {
			if validNRIC(text[start:end]) {
				add(Span{Start: start, End: end, Type: NationalID, Score: 0.95})
			}
		},
		func(start, end int) {
			s := strings.TrimRight(text[start:end], " ")
			if validIBAN(s) {
				add(Span{Start: start, End: start + len(s), Type: BankAccount, Score: 0.95})
			}
		})
}

// findEmails finds email addresses.
func findEmails(text string, add func(Span)) {
	emails(text, func(start, end int) { add(Span{Start: start, End: end, Type: Email, Score: 0.95}) })
}
