package policy

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"unicode/utf8"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Limits of blocking rules: tenants write them, so every one is bounded.
const (
	MaxBlockingRules = 50
	MaxPatternLen    = 512
	// MaxRuleInsts bounds the compiled size of each rule's pattern and of
	// all of an account's rules together: matching costs up to about 6 ms
	// per MiB of text for each instruction (a pattern such as
	// (?s).{1000}Z keeps that many threads alive at every byte), so it
	// bounds the work per byte an admin's rules can ask of the gateway.
	MaxRuleInsts       = 2048
	MaxAudioMarginMs   = 2000
	MaxUnmaskedSuffix  = 8
	blockingRuleIDSpec = "1-64 of a-z, 0-9, '-' and '_'"
)

var ruleIDRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// TextTypes are the artifact types whose content is text: transcripts,
// messages and email. Redaction and masking apply to them.
var TextTypes = map[sealgatev1.ArtifactType]bool{
	sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT:      true,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_TRANSCRIPT:     true,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL_TRANSCRIPT: true,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_MESSAGING_TRANSCRIPT: true,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_MESSAGE:        true,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_TRANSCRIPT:     true,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE:          true,
}

// DefaultBlockedTypes are the types a blocking rule applies to when it
// names none: what consumers send (web and in-app chat, SMS, email).
var DefaultBlockedTypes = []sealgatev1.ArtifactType{
	sealgatev1.ArtifactType_ARTIFACT_TYPE_MESSAGING_TRANSCRIPT,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE,
	sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_MESSAGE,
}

// CompileRule checks a blocking rule and compiles its pattern. It returns
// the compiled pattern, the size of its program in instructions (what
// matching it costs per byte, at worst), and the violations found (field
// names relative to the rule, prefixed by field).
func CompileRule(field string, r *sealgatev1.BlockingRule) (*regexp.Regexp, int, []Violation) {
	var vs violations
	size := 0
	if !ruleIDRE.MatchString(r.GetId()) {
		vs.add(field+".id", ReasonInvalidArgument, "rule id: want %s", blockingRuleIDSpec)
	}
	p := r.GetPattern()
	var re *regexp.Regexp
	switch {
	case p == "":
		vs.add(field+".pattern", ReasonInvalidArgument, "a pattern is required")
	case len(p) > MaxPatternLen || !utf8.ValidString(p):
		vs.add(field+".pattern", ReasonInvalidArgument, "pattern of %d bytes: at most %d bytes of UTF-8", len(p), MaxPatternLen)
	default:
		parsed, err := syntax.Parse(p, syntax.Perl)
		if err != nil {
			vs.add(field+".pattern", ReasonInvalidArgument, "does not compile as RE2: %s", syntaxError(err))
			break
		}
		prog, err := syntax.Compile(parsed.Simplify())
		if err != nil || len(prog.Inst) > MaxRuleInsts {
			vs.add(field+".pattern", ReasonInvalidArgument, "too large: its program exceeds %d instructions", MaxRuleInsts)
			break
		}
		size = len(prog.Inst)
		re, err = regexp.Compile(p)
		if err != nil {
			vs.add(field+".pattern", ReasonInvalidArgument, "does not compile as RE2: %s", syntaxError(err))
		}
	}
	for i, t := range r.GetArtifactTypes() {
		if !TextTypes[t] {
			vs.add(field+".artifact_types["+strconv.Itoa(i)+"]", ReasonInvalidArgument, "%s is not a text type", t)
		}
	}
	return re, size, vs
}

// syntaxError returns the reason of a regexp error without repeating the
// whole pattern.
func syntaxError(err error) string {
	if se, ok := err.(*syntax.Error); ok {
		return string(se.Code)
	}
	return "invalid pattern"
}

func validatePrivacy(vs *violations, pp *sealgatev1.PrivacyPolicy) {
	if pp == nil {
		return
	}
	for i, t := range pp.GetRedaction().GetEntityTypes() {
		if _, ok := sealgatev1.EntityType_name[int32(t)]; !ok || t == sealgatev1.EntityType_ENTITY_TYPE_UNSPECIFIED {
			vs.add(fmt.Sprintf("privacy_policy.redaction.entity_types[%d]", i), ReasonInvalidArgument, "unknown entity type %d", int32(t))
		}
	}
	m := pp.GetMasking()
	for i, t := range m.GetEntityTypes() {
		if _, ok := sealgatev1.EntityType_name[int32(t)]; !ok || t == sealgatev1.EntityType_ENTITY_TYPE_UNSPECIFIED {
			vs.add(fmt.Sprintf("privacy_policy.masking.entity_types[%d]", i), ReasonInvalidArgument, "unknown entity type %d", int32(t))
		}
	}
	if c := m.GetMaskingCharacter(); c != "" && (utf8.RuneCountInString(c) != 1 || !printable(c)) {
		vs.add("privacy_policy.masking.masking_character", ReasonInvalidArgument, "one printable character")
	}
	if m != nil && m.UnmaskedSuffixLength != nil && (m.GetUnmaskedSuffixLength() < 0 || m.GetUnmaskedSuffixLength() > MaxUnmaskedSuffix) {
		vs.add("privacy_policy.masking.unmasked_suffix_length", ReasonInvalidArgument, "0 to %d", MaxUnmaskedSuffix)
	}
	if pp.AudioMarginMs != nil && (pp.GetAudioMarginMs() < 0 || pp.GetAudioMarginMs() > MaxAudioMarginMs) {
		vs.add("privacy_policy.audio_margin_ms", ReasonInvalidArgument, "0 to %d milliseconds", MaxAudioMarginMs)
	}
	rules := pp.GetBlockingRules()
	if len(rules) > MaxBlockingRules {
		vs.add("privacy_policy.blocking_rules", ReasonInvalidArgument, "%d rules: at most %d", len(rules), MaxBlockingRules)
		return
	}
	seen := map[string]int{}
	total := 0
	for i, r := range rules {
		field := "privacy_policy.blocking_rules[" + strconv.Itoa(i) + "]"
		_, size, rv := CompileRule(field, r)
		if total += size; total > MaxRuleInsts && total-size <= MaxRuleInsts && len(rv) == 0 {
			vs.add(field+".pattern", ReasonInvalidArgument, "the rules up to this one compile to %d instructions: all rules together at most %d", total, MaxRuleInsts)
		}
		for _, v := range rv {
			vs.add(v.Field, v.Reason, "%s", v.Description)
		}
		if j, dup := seen[r.GetId()]; dup && r.GetId() != "" {
			vs.add(field+".id", ReasonInvalidArgument, "duplicate id: blocking_rules[%d] has it", j)
		}
		seen[r.GetId()] = i
	}
}
