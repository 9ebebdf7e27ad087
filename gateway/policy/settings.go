package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Reasons of a Violation. The gateway copies them into the field violations
// of its error details.
const (
	// ReasonInvalidArgument is the generic reason of a malformed field.
	ReasonInvalidArgument = "INVALID_ARGUMENT"
	// ReasonUnknownRegion marks a field that is not a region code.
	ReasonUnknownRegion = "UNKNOWN_REGION"
	// ReasonRetentionOutOfRange marks a retention outside its category's
	// range.
	ReasonRetentionOutOfRange = "RETENTION_OUT_OF_RANGE"
)

// MaxQueueIDLen is the maximum length in bytes of a queue id.
const MaxQueueIDLen = 128

// MaxQueues bounds the per-queue storage regions of an account.
const MaxQueues = 1000

// maxViolations bounds the field violations one error reports.
const maxViolations = 20

// Violation is one problem with one field of a request.
type Violation struct {
	// Field is the path of the field, e.g. "retention_rules[0].retention_days".
	Field string
	// Description says what is wrong, in words fit for the client.
	Description string
	// Reason is a stable code: one of the Reason constants.
	Reason string
}

// ValidationError lists every violation found in a request. The gateway
// answers it with INVALID_ARGUMENT and one field violation per entry.
type ValidationError struct {
	Violations []Violation
}

// Error returns "policy: invalid settings: " followed by each violation as
// "field: description", separated by "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "policy: invalid settings: " + strings.Join(parts, "; ")
}

// Reason returns the reason of the first violation that is more specific
// than ReasonInvalidArgument, or ReasonInvalidArgument when there is none.
func (e *ValidationError) Reason() string {
	for _, v := range e.Violations {
		if v.Reason != ReasonInvalidArgument && v.Reason != "" {
			return v.Reason
		}
	}
	return ReasonInvalidArgument
}

// violations accumulates Violation values.
type violations []Violation

func (vs *violations) add(field, reason, format string, args ...any) {
	if len(*vs) >= maxViolations {
		return
	}
	*vs = append(*vs, Violation{Field: field, Description: fmt.Sprintf(format, args...), Reason: reason})
}

func (vs violations) err() error {
	if len(vs) == 0 {
		return nil
	}
	return &ValidationError{Violations: vs}
}

// Validate checks the form of settings s and returns a *ValidationError
// listing every violation, or nil when s is valid. keySchemes are the key URI
// schemes of the configured key drivers (e.g. "aws-kms", "hcvault",
// "local"); a customer key must use one of them.
//
// Validate checks that region fields hold region codes of Regions; whether
// the deployment has those regions is CheckTopology's concern, since the
// gateway answers the two differently. topo is accepted for symmetry with
// CheckTopology and may be nil. The name and update_time fields are not
// checked: the gateway sets them.
func Validate(s *sealgatev1.AccountSettings, topo *Topology, keySchemes []string) error {
	_ = topo
	var vs violations
	if s == nil {
		vs.add("settings", ReasonInvalidArgument, "settings are required")
		return vs.err()
	}
	switch h := s.GetHomeRegion(); {
	case h == "":
		vs.add("home_region", ReasonInvalidArgument, "home_region is required")
	case !IsRegion(h):
		vs.add("home_region", ReasonUnknownRegion, "%q is not a region; want one of %s", h, regionList())
	}
	if r := s.GetStorageRegion(); r != "" && !IsRegion(r) {
		vs.add("storage_region", ReasonUnknownRegion, "%q is not a region; want one of %s", r, regionList())
	}
	validateQueues(&vs, s.GetQueueStorageRegions())
	validateKeyPolicy(&vs, s.GetKeyPolicy(), keySchemes)
	validateRetention(&vs, s.GetRetentionRules())
	validatePrivacy(&vs, s.GetPrivacyPolicy())
	if _, ok := sealgatev1.DeletionMode_name[int32(s.GetDeletionMode())]; !ok {
		vs.add("deletion_mode", ReasonInvalidArgument, "unknown deletion mode %d", int32(s.GetDeletionMode()))
	}
	return vs.err()
}

func validateQueues(vs *violations, queues map[string]string) {
	if len(queues) > MaxQueues {
		vs.add("queue_storage_regions", ReasonInvalidArgument, "%d queues: at most %d", len(queues), MaxQueues)
		return
	}
	for _, q := range slices.Sorted(maps.Keys(queues)) {
		field := "queue_storage_regions[" + quoteKey(q) + "]"
		switch {
		case q == "":
			vs.add(field, ReasonInvalidArgument, "queue id must not be empty")
			continue
		case len(q) > MaxQueueIDLen:
			vs.add(field, ReasonInvalidArgument, "queue id is longer than %d bytes", MaxQueueIDLen)
			continue
		case !printable(q):
			vs.add(field, ReasonInvalidArgument, "queue id must be printable UTF-8")
			continue
		}
		if r := queues[q]; !IsRegion(r) {
			vs.add(field, ReasonUnknownRegion, "%q is not a region; want one of %s", r, regionList())
		}
	}
}

func validateKeyPolicy(vs *violations, kp *sealgatev1.KeyPolicy, keySchemes []string) {
	uri := kp.GetCustomerKeyUri()
	switch mode := kp.GetMode(); mode {
	case sealgatev1.KeyMode_KEY_MODE_UNSPECIFIED, sealgatev1.KeyMode_KEY_MODE_PROVIDER:
		if uri != "" {
			vs.add("key_policy.customer_key_uri", ReasonInvalidArgument,
				"customer_key_uri must be empty unless the mode uses a customer key")
		}
	case sealgatev1.KeyMode_KEY_MODE_CUSTOMER, sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER:
		scheme, rest, found := strings.Cut(uri, "://")
		switch {
		case uri == "":
			vs.add("key_policy.customer_key_uri", ReasonInvalidArgument,
				"customer_key_uri is required by key mode %s", mode)
		case !found || scheme == "" || rest == "":
			vs.add("key_policy.customer_key_uri", ReasonInvalidArgument,
				"customer_key_uri must have the form SCHEME://KEY")
		case !slices.Contains(keySchemes, scheme):
			vs.add("key_policy.customer_key_uri", ReasonInvalidArgument,
				"key URI scheme %q is not supported; want one of %s", scheme, listOf(keySchemes))
		}
	default:
		vs.add("key_policy.mode", ReasonInvalidArgument, "unknown key mode %d", int32(mode))
	}
}

func validateRetention(vs *violations, rules []*sealgatev1.RetentionRule) {
	seen := make(map[sealgatev1.RetentionCategory]int)
	for i, r := range rules {
		prefix := "retention_rules[" + strconv.Itoa(i) + "]"
		if r == nil {
			vs.add(prefix, ReasonInvalidArgument, "retention rule must not be empty")
			continue
		}
		cat := r.GetCategory()
		minDays, maxDays := RetentionRange(cat)
		switch {
		case cat == sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED:
			vs.add(prefix+".category", ReasonInvalidArgument, "category is required")
			continue
		case maxDays == 0:
			vs.add(prefix+".category", ReasonInvalidArgument, "unknown retention category %d", int32(cat))
			continue
		}
		if j, dup := seen[cat]; dup {
			vs.add(prefix+".category", ReasonInvalidArgument,
				"duplicate rule for %s: retention_rules[%d] already sets it", cat, j)
		} else {
			seen[cat] = i
		}
		if d := r.GetRetentionDays(); d < minDays || d > maxDays {
			vs.add(prefix+".retention_days", ReasonRetentionOutOfRange,
				"retention_days %d is out of range for %s: want %d to %d days", d, cat, minDays, maxDays)
		}
	}
}

// CheckTopology returns an error wrapping ErrUnknownRegion, naming the
// regions, when s names region codes (home, storage or queue regions) that
// topo does not configure. It returns nil when every region is configured;
// values that are not region codes at all are left to Validate.
func CheckTopology(s *sealgatev1.AccountSettings, topo *Topology) error {
	named := []string{s.GetHomeRegion(), s.GetStorageRegion()}
	named = slices.AppendSeq(named, maps.Values(s.GetQueueStorageRegions()))
	var missing []string
	for _, r := range named {
		if IsRegion(r) && !topo.HasRegion(r) && !slices.Contains(missing, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("%w %s: not configured in this deployment (configured: %s)",
		ErrUnknownRegion, listOf(missing), listOf(topo.Regions()))
}

// regionList returns the region codes of Regions as a readable list.
func regionList() string { return listOf(Regions) }

// listOf returns items quoted and separated by commas.
func listOf(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// quoteKey returns k as is when it is printable, and Go-quoted otherwise,
// so a field path never carries control characters.
func quoteKey(k string) string {
	const max = 64
	if len(k) > max {
		return strconv.Quote(strings.ToValidUTF8(k[:max], "")) + "…"
	}
	if printable(k) {
		return k
	}
	return strconv.Quote(k)
}

// printable reports whether s is valid UTF-8 made only of printable runes.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
