package policy

import (
	"strconv"
	"strings"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Class is the residency class of an artifact type: it says which setting
// decides the artifact's storage region.
type Class int

const (
	// ClassStorageSetting types are stored in the region the account's
	// storage settings choose (queue, then account, then home region).
	ClassStorageSetting Class = iota + 1
	// ClassHomeRegion types are always stored in the account's home region.
	ClassHomeRegion
)

// String returns the name of the class, or "Class(N)" for an undefined one.
func (c Class) String() string {
	switch c {
	case ClassStorageSetting:
		return "storage-setting"
	case ClassHomeRegion:
		return "home-region"
	default:
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
}

// typeRule is the residency and retention rule of one artifact type.
type typeRule struct {
	class    Class
	category sealgatev1.RetentionCategory
}

// typeRules holds the rule of every artifact type but UNSPECIFIED. A new
// ArtifactType value needs a rule here; the tests fail until it has one.
var typeRules = map[sealgatev1.ArtifactType]typeRule{
	sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING:       {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT:      {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING:      {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_TRANSCRIPT:     {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL:            {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL_TRANSCRIPT: {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_MESSAGING_TRANSCRIPT: {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_MESSAGE:        {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_TRANSCRIPT:     {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE:          {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_MMS_MEDIA:            {ClassHomeRegion, sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_LOG:              {ClassHomeRegion, sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG:             {ClassHomeRegion, sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED},
	sealgatev1.ArtifactType_ARTIFACT_TYPE_AUDIO_SURVEY:         {ClassStorageSetting, sealgatev1.RetentionCategory_RETENTION_CATEGORY_AUDIO_SURVEY_FILES},
}

// TypeInfo returns the residency class and retention category of t. The
// category is RETENTION_CATEGORY_UNSPECIFIED for types kept indefinitely
// (SMS and call logs), to which no retention rule applies. ok is false for
// ARTIFACT_TYPE_UNSPECIFIED and for values the package has no rule for;
// such types must be refused.
func TypeInfo(t sealgatev1.ArtifactType) (class Class, category sealgatev1.RetentionCategory, ok bool) {
	r, ok := typeRules[t]
	if !ok {
		return 0, sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED, false
	}
	return r.class, r.category, true
}

// retentionRanges holds the allowed retention_days of each category.
var retentionRanges = map[sealgatev1.RetentionCategory][2]int32{
	sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS: {1, 3650},
	sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES:             {1, 30},
	sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES:         {1, 365},
	sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES:             {1, 365},
	sealgatev1.RetentionCategory_RETENTION_CATEGORY_AUDIO_SURVEY_FILES:         {1, 3650},
}

// RetentionRange returns the smallest and largest retention in days that a
// rule of category cat may set, both inclusive. It returns 0, 0 for
// RETENTION_CATEGORY_UNSPECIFIED and undefined categories, which take no
// rule.
func RetentionRange(cat sealgatev1.RetentionCategory) (minDays, maxDays int32) {
	r := retentionRanges[cat]
	return r[0], r[1]
}

const typePrefix = "ARTIFACT_TYPE_"

// TypeName returns the short name of t, its enum name without the
// "ARTIFACT_TYPE_" prefix, e.g. "CALL_RECORDING". An undefined value yields
// its number.
func TypeName(t sealgatev1.ArtifactType) string {
	return strings.TrimPrefix(t.String(), typePrefix)
}

// ParseTypeName returns the artifact type named s, given either as the short
// name ("CALL_RECORDING") or the full enum name
// ("ARTIFACT_TYPE_CALL_RECORDING"), in any letter case. ok is false for an
// unknown name and for UNSPECIFIED, which names no type.
func ParseTypeName(s string) (t sealgatev1.ArtifactType, ok bool) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, typePrefix) {
		name = typePrefix + name
	}
	v, ok := sealgatev1.ArtifactType_value[name]
	if !ok || v == int32(sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED) {
		return sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED, false
	}
	return sealgatev1.ArtifactType(v), true
}
