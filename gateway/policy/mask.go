package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sealgate/sealgate/gateway/layout"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// MaskPaths lists the field mask paths ApplyMask accepts, in the order an
// empty mask applies them. Callers must not modify it.
var MaskPaths = []string{
	"home_region",
	"localized",
	"storage_region",
	"queue_storage_regions",
	"key_policy",
	"retention_rules",
	"deletion_mode",
	"privacy_policy",
}

// nestedMaskPaths are the accepted paths inside key_policy.
var nestedMaskPaths = []string{"key_policy.mode", "key_policy.customer_key_uri",
	"privacy_policy.redaction", "privacy_policy.masking", "privacy_policy.blocking_rules", "privacy_policy.audio_margin_ms",
	"privacy_policy.redaction.enabled", "privacy_policy.redaction.entity_types",
	"privacy_policy.masking.enabled", "privacy_policy.masking.entity_types",
	"privacy_policy.masking.masking_character", "privacy_policy.masking.unmasked_suffix_length"}

// ApplyMask copies the fields of src named by paths into dst, so that dst
// holds the settings after an update. An empty paths means every path of
// MaskPaths. A named field that is unset in src is cleared in dst. src may
// be nil, which reads as empty settings. The name and update_time fields are
// never copied.
//
// ApplyMask returns a *ValidationError with Field "update_mask" naming each
// unknown path, and leaves dst unchanged then. It returns a plain error when
// dst is nil.
func ApplyMask(dst, src *sealgatev1.AccountSettings, paths []string) error {
	if dst == nil {
		return fmt.Errorf("policy: apply mask: nil destination settings")
	}
	switch {
	case len(paths) == 1 && paths[0] == "*":
		paths = MaskPaths
	case len(paths) == 0:
		paths = populatedPaths(src)
	}
	var vs violations
	for _, p := range paths {
		if !knownMaskPath(p) {
			vs.add("update_mask", ReasonInvalidArgument,
				"unknown path %q; want one of %s", p, listOf(slices.Concat(MaskPaths, nestedMaskPaths)))
		}
	}
	if err := vs.err(); err != nil {
		return err
	}
	for _, p := range paths {
		applyPath(dst, src, p)
	}
	return nil
}

// populatedPaths returns the mask paths of the fields set in src: what an
// update without a mask changes (AIP-134), so that a retention-only update
// leaves the key policy alone.
func populatedPaths(src *sealgatev1.AccountSettings) []string {
	var out []string
	m := src.ProtoReflect()
	for _, p := range MaskPaths {
		if fd := m.Descriptor().Fields().ByName(protoreflect.Name(p)); fd != nil && m.Has(fd) {
			out = append(out, p)
		}
	}
	return out
}

func knownMaskPath(p string) bool {
	return slices.Contains(MaskPaths, p) || slices.Contains(nestedMaskPaths, p)
}

// applyPath copies the field at the known path p from src to dst.
func applyPath(dst, src *sealgatev1.AccountSettings, p string) {
	switch p {
	case "home_region":
		dst.HomeRegion = src.GetHomeRegion()
	case "localized":
		dst.Localized = src.GetLocalized()
	case "storage_region":
		dst.StorageRegion = src.GetStorageRegion()
	case "queue_storage_regions":
		dst.QueueStorageRegions = nil
		if q := src.GetQueueStorageRegions(); len(q) > 0 {
			dst.QueueStorageRegions = maps.Clone(q)
		}
	case "key_policy":
		dst.KeyPolicy = nil
		if kp := src.GetKeyPolicy(); kp != nil {
			dst.KeyPolicy = proto.CloneOf(kp)
		}
	case "key_policy.mode", "key_policy.customer_key_uri":
		if dst.KeyPolicy == nil {
			dst.KeyPolicy = &sealgatev1.KeyPolicy{}
		}
		if strings.HasSuffix(p, ".mode") {
			dst.KeyPolicy.Mode = src.GetKeyPolicy().GetMode()
		} else {
			dst.KeyPolicy.CustomerKeyUri = src.GetKeyPolicy().GetCustomerKeyUri()
		}
	case "retention_rules":
		dst.RetentionRules = nil
		for _, r := range src.GetRetentionRules() {
			dst.RetentionRules = append(dst.RetentionRules, proto.CloneOf(r))
		}
	case "deletion_mode":
		dst.DeletionMode = src.GetDeletionMode()
	case "privacy_policy":
		dst.PrivacyPolicy = nil
		if pp := src.GetPrivacyPolicy(); pp != nil {
			dst.PrivacyPolicy = proto.CloneOf(pp)
		}
	case "privacy_policy.redaction", "privacy_policy.masking", "privacy_policy.blocking_rules", "privacy_policy.audio_margin_ms":
		if dst.PrivacyPolicy == nil {
			dst.PrivacyPolicy = &sealgatev1.PrivacyPolicy{}
		}
		sp, dp := src.GetPrivacyPolicy(), dst.PrivacyPolicy
		switch p {
		case "privacy_policy.redaction":
			dp.Redaction = proto.CloneOf(sp.GetRedaction())
		case "privacy_policy.masking":
			dp.Masking = proto.CloneOf(sp.GetMasking())
		case "privacy_policy.blocking_rules":
			dp.BlockingRules = nil
			for _, r := range sp.GetBlockingRules() {
				dp.BlockingRules = append(dp.BlockingRules, proto.CloneOf(r))
			}
		default:
			dp.AudioMarginMs = sp.AudioMarginMs
		}
	default:
		if rest, ok := strings.CutPrefix(p, "privacy_policy."); ok {
			if dst.PrivacyPolicy == nil {
				dst.PrivacyPolicy = &sealgatev1.PrivacyPolicy{}
			}
			sub, field, _ := strings.Cut(rest, ".")
			var sm, dm protoreflect.Message
			if sub == "redaction" {
				if dst.PrivacyPolicy.Redaction == nil {
					dst.PrivacyPolicy.Redaction = &sealgatev1.Redaction{}
				}
				sm, dm = src.GetPrivacyPolicy().GetRedaction().ProtoReflect(), dst.PrivacyPolicy.Redaction.ProtoReflect()
			} else {
				if dst.PrivacyPolicy.Masking == nil {
					dst.PrivacyPolicy.Masking = &sealgatev1.Masking{}
				}
				sm, dm = src.GetPrivacyPolicy().GetMasking().ProtoReflect(), dst.PrivacyPolicy.Masking.ProtoReflect()
			}
			copyField(dm, sm, protoreflect.Name(field))
		}
	}
}

// copyField sets field name of dst to its value in src, or clears it when
// src does not have it. src may be an invalid (nil) message.
func copyField(dst, src protoreflect.Message, name protoreflect.Name) {
	fd := dst.Descriptor().Fields().ByName(name)
	if !src.IsValid() || !src.Has(fd) {
		dst.Clear(fd)
		return
	}
	if fd.IsList() {
		l := dst.NewField(fd).List()
		sl := src.Get(fd).List()
		for i := range sl.Len() {
			l.Append(sl.Get(i))
		}
		dst.Set(fd, protoreflect.ValueOfList(l))
		return
	}
	dst.Set(fd, src.Get(fd))
}

// SettingsName returns the resource name of an account's settings,
// "accounts/{account}/settings".
func SettingsName(account string) string {
	return "accounts/" + account + "/settings"
}

// ParseSettingsName returns the account id in a settings resource name of
// the form "accounts/{account}/settings". ok is false when name has another
// form or the account id is not well formed (see ValidAccountID).
func ParseSettingsName(name string) (account string, ok bool) {
	rest, found := strings.CutPrefix(name, "accounts/")
	if !found {
		return "", false
	}
	account, found = strings.CutSuffix(rest, "/settings")
	if !found || !ValidAccountID(account) {
		return "", false
	}
	return account, true
}

// ValidAccountID reports whether id is a well-formed account id (the rule of
// package layout, which the auth package applies to tokens too).
func ValidAccountID(id string) bool { return layout.ValidAccountID(id) }
