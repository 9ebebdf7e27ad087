package policy

import (
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// StorageRegion returns the long-term storage region of a new artifact of
// type t uploaded to queueID (empty for none) by an account with settings s.
//
// A localized account, and any type of ClassHomeRegion, stays in the home
// region. Otherwise the queue's entry in queue_storage_regions wins, then the
// account's storage_region, and the home region is the fallback. A type
// without a rule (see TypeInfo) follows the storage setting, since it is
// refused before any upload. StorageRegion returns "" only when s is nil or
// names no region at all; it does not check the region against a topology
// (see CheckTopology and Topology.Bucket).
func StorageRegion(s *sealgatev1.AccountSettings, t sealgatev1.ArtifactType, queueID string) string {
	home := s.GetHomeRegion()
	if s.GetLocalized() {
		return home
	}
	if class, _, _ := TypeInfo(t); class == ClassHomeRegion {
		return home
	}
	if queueID != "" {
		if r, ok := s.GetQueueStorageRegions()[queueID]; ok && r != "" {
			return r
		}
	}
	if r := s.GetStorageRegion(); r != "" {
		return r
	}
	return home
}

// RetentionDays returns the number of days an artifact of type t is kept
// after its creation under settings s. ok is false when the artifact is kept
// indefinitely: its type has no retention category (logs, unknown types) or
// the account has no rule for the category.
func RetentionDays(s *sealgatev1.AccountSettings, t sealgatev1.ArtifactType) (days int32, ok bool) {
	_, cat, known := TypeInfo(t)
	if !known || cat == sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED {
		return 0, false
	}
	for _, r := range s.GetRetentionRules() {
		if r.GetCategory() == cat && r.GetRetentionDays() > 0 {
			return r.GetRetentionDays(), true
		}
	}
	return 0, false
}
