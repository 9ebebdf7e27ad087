package detect

import (
	"strings"
	"testing"
)

// redacted replaces what d finds in text with placeholders.
func redacted(d *Detector, text string) string {
	var b strings.Builder
	pos := 0
	for _, s := range d.Find(text) {
		b.WriteString(text[pos:s.Start])
		b.WriteString(s.Type.Placeholder())
		pos = s.End
	}
	b.WriteString(text[pos:])
	return b.String()
}

func TestFindsEachTypeWithItsPlaceholder(t *testing.T) {
	d := New()
	for _, c := range []struct{ in, want string }{
		// Phones of the eight regions, national and international.
		{"call me at 555-555-5555 please", "call me at [PHONE NUMBER] please"},
		{"it's (415) 555-0134", "it's [PHONE NUMBER]"},
		{"reach me on +1 416 555 0199", "reach me on [PHONE NUMBER]"},
		{"mobile 0412 345 678", "mobile [PHONE NUMBER]"},
		{"ring +61 2 9374 4000 tomorrow", "ring [PHONE NUMBER] tomorrow"},
		{"meu celular é (11) 91234-5678", "meu celular é [PHONE NUMBER]"},
		{"Rufen Sie 030 12345678 an", "Rufen Sie [PHONE NUMBER] an"},
		{"Handy +49 151 23456789", "Handy [PHONE NUMBER]"},
		{"電話は03-1234-5678です", "電話は[PHONE NUMBER]です"},
		{"携帯 090-1234-5678", "携帯 [PHONE NUMBER]"},
		{"mi número es 55 1234 5678", "mi número es [PHONE NUMBER]"},
		{"call +65 9123 4567", "call [PHONE NUMBER]"},
		// Cards with any separators, Luhn-checked.
		{"card 4111 1111 1111 1111 exp", "card [CARD NUMBER] exp"},
		{"card 4111-1111-1111-1111", "card [CARD NUMBER]"},
		{"amex 378282246310005.", "amex [CARD NUMBER]."},
		// Email.
		{"mail jane.doe+x@example.co.uk now", "mail [EMAIL ADDRESS] now"},
		// National ids of the eight regions.
		{"SSN 123-45-6789", "SSN [NATIONAL ID]"},
		{"my TFN is 123 456 782", "my TFN is [NATIONAL ID]"},
		{"CPF 529.982.247-25", "CPF [NATIONAL ID]"},
		{"SIN 046 454 286", "SIN [NATIONAL ID]"},
		{"Steuer-ID 86095742719", "Steuer-ID [NATIONAL ID]"},
		{"NRIC S1234567D ok", "NRIC [NATIONAL ID] ok"},
		// IBAN (mod 97).
		{"IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN [BANK ACCOUNT] thanks"},
		{"to GB82WEST12345698765432", "to [BANK ACCOUNT]"},
		// Spoken numbers.
		{"it's four one five five five five one two one two ok", "it's [PHONE NUMBER] ok"},
		{"oh four one two double five five triple six", "[PHONE NUMBER]"},
		{"es cinco cinco uno dos tres cuatro cinco seis siete ocho", "es [PHONE NUMBER]"},
		{"die Nummer ist null drei null eins zwei drei vier fünf sechs", "die Nummer ist [PHONE NUMBER]"},
		{"card four one one one one one one one one one one one one one one one", "card [CARD NUMBER]"},
		// Names from context.
		{"Hi, my name is Maria Gonzalez and I", "Hi, my name is [NAME] and I"},
		{"I spoke to Mr. Tanaka yesterday", "I spoke to Mr. [NAME] yesterday"},
		{"hola, me llamo Juan Pérez.", "hola, me llamo [NAME]."},
	} {
		if got := redacted(d, c.in); got != c.want {
			t.Errorf("%q\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestLeavesLookalikesAlone(t *testing.T) {
	d := New()
	for _, in := range []string{
		"your order number is 4829338122 and it ships",
		"ticket #55512121 is closed",
		"case 20240315-0042 was escalated",
		"the call lasted 45 minutes",
		"it costs $1,234.56 plus tax",
		"that is €1234567 in total",
		"we met on 2024-03-15 at 10:30",
		"the date was 15/03/2024",
		"invoice 2023-000481",
		"order number four five six seven eight nine one",
		"it took one two three four five six seven minutes",
		"version 10.2.3",
		"Reference 8392017455 confirmed",
		"room 1204 on floor 12",
		"this is great, thanks",
		"I am fine",
		"a card-like 4111 1111 1111 1112 that fails Luhn",
		"IBAN DE89 3704 0044 0532 0130 01 with a bad check",
	} {
		if got := redacted(d, in); got != in {
			t.Errorf("changed a line without personal data:\n  in %q\n got %q", in, got)
		}
	}
}

func TestOnlyChosenTypes(t *testing.T) {
	text := "mail a@b.example, card 4111 1111 1111 1111, phone 555-555-5555"
	got := redacted(New(Card), text)
	if got != "mail a@b.example, card [CARD NUMBER], phone 555-555-5555" {
		t.Fatalf("got %q", got)
	}
}

// The checksums against published valid examples, and each with one digit
// changed.
func TestChecksums(t *testing.T) {
	for _, c := range []struct {
		name  string
		valid func(string) bool
		good  string
	}{
		{"luhn", luhn, "4111111111111111"},
		{"tfn", validTFN, "123456782"},
		{"sin", validSIN, "046454286"},
		{"cpf", validCPF, "52998224725"},
		{"steuer-id", validSteuerID, "86095742719"},
		{"nric", validNRIC, "S1234567D"},
		{"fin", validNRIC, "F1234567N"},
		{"iban", validIBAN, "DE89370400440532013000"},
		{"iban-gb", validIBAN, "GB82WEST12345698765432"},
		{"curp", validCURP, "HEGG560427MVZRRL04"},
		{"my number", validMyNumber, "123456789018"},
	} {
		if !c.valid(c.good) {
			t.Errorf("%s: %s refused", c.name, c.good)
		}
		b := []byte(c.good)
		i := len(b) - 2
		if b[i] == '9' {
			b[i] = '8'
		} else {
			b[i]++
		}
		if c.valid(string(b)) {
			t.Errorf("%s: %s (one digit changed) accepted", c.name, b)
		}
	}
	if validSSN("000123456") || validSSN("666123456") || validSSN("900123456") || validSSN("123004567") || !validSSN("123456789") {
		t.Error("SSN area/group/serial rules")
	}
}
