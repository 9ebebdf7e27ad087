package gateway

import (
	"regexp"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Names of the authenticated metadata entries in an object header. Labels are
// stored as "label.<key>".
const (
	metaContentType  = "content_type"
	metaEngagementID = "engagement_id"
	metaQueueID      = "queue_id"
	metaSIPZone      = "sip_zone"
	metaCreateTime   = "create_time"
	metaExpireTime   = "expire_time"
	metaRedactTime   = "redact_time"
	metaLabelPrefix  = "label."
)

// Limits on upload header fields.
const (
	maxLabels         = 64
	maxLabelValueLen  = 256
	maxContentTypeLen = 255
	maxIDLen          = 128
)

var labelKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// validateUploadHeader checks the client-supplied header fields and returns
// INVALID_ARGUMENT with a field violation for the first problem.
func validateUploadHeader(h *sealgatev1.UploadHeader) error {
	if _, _, ok := policy.TypeInfo(h.GetType()); !ok {
		return invalidArgument("header.type", "a known artifact type is required", ReasonInvalidArgument)
	}
	if h.GetSipZone() == "" {
		return invalidArgument("header.sip_zone", "a SIP zone is required", ReasonUnknownSIPZone)
	}
	if len(h.GetContentType()) > maxContentTypeLen || !printable(h.GetContentType()) {
		return invalidArgument("header.content_type", "must be printable, at most 255 bytes", ReasonInvalidArgument)
	}
	for field, v := range map[string]string{"header.engagement_id": h.GetEngagementId(), "header.queue_id": h.GetQueueId()} {
		if len(v) > maxIDLen || !printable(v) {
			return invalidArgument(field, "must be printable, at most 128 bytes", ReasonInvalidArgument)
		}
	}
	if len(h.GetLabels()) > maxLabels {
		return invalidArgument("header.labels", "at most 64 labels", ReasonInvalidArgument)
	}
	for k, v := range h.GetLabels() {
		if !labelKeyRE.MatchString(k) {
			return invalidArgument("header.labels["+echo(k)+"]", "label keys are 1-63 of a-z, 0-9, '_', '.', '-', starting with a letter", ReasonInvalidArgument)
		}
		if len(v) > maxLabelValueLen || !printable(v) {
			return invalidArgument("header.labels["+k+"]", "label values are printable, at most 256 bytes", ReasonInvalidArgument)
		}
	}
	if len(h.GetRequestId()) > maxIDLen || !printable(h.GetRequestId()) {
		return invalidArgument("header.request_id", "must be printable, at most 128 bytes (a UUID)", ReasonInvalidArgument)
	}
	if h.SizeBytes != nil && h.GetSizeBytes() < 0 {
		return invalidArgument("header.size_bytes", "must not be negative", ReasonInvalidArgument)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// headerMetadata is the metadata sealed into the object header.
func headerMetadata(h *sealgatev1.UploadHeader, created time.Time, expire *time.Time) map[string]string {
	m := map[string]string{metaCreateTime: created.UTC().Format(time.RFC3339Nano), metaSIPZone: h.GetSipZone()}
	if expire != nil {
		m[metaExpireTime] = expire.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range map[string]string{metaContentType: h.GetContentType(), metaEngagementID: h.GetEngagementId(), metaQueueID: h.GetQueueId()} {
		if v != "" {
			m[k] = v
		}
	}
	for k, v := range h.GetLabels() {
		m[metaLabelPrefix+k] = v
	}
	return m
}

// expireTime returns when retention ends for a new artifact of type t, or nil
// when the account keeps it indefinitely.
func expireTime(s *sealgatev1.AccountSettings, t sealgatev1.ArtifactType, created time.Time) *time.Time {
	_, cat, _ := policy.TypeInfo(t)
	if cat == sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED {
		return nil
	}
	for _, r := range s.GetRetentionRules() {
		if r.GetCategory() == cat && r.GetRetentionDays() > 0 {
			e := created.Add(time.Duration(r.GetRetentionDays()) * 24 * time.Hour)
			return &e
		}
	}
	return nil
}

// artifactFromHeader builds the API view of an artifact from its verified or
// parsed header. size is the plaintext size.
func artifactFromHeader(ref layout.Ref, h *keys.Header, size int64, state sealgatev1.Artifact_State) *sealgatev1.Artifact {
	t, _ := policy.ParseTypeName(h.Context[keys.ContextType])
	a := &sealgatev1.Artifact{
		Name:          ref.Name(),
		Type:          t,
		State:         state,
		StagingRegion: ref.Staging,
		StorageRegion: h.Context[keys.ContextRegion],
		SizeBytes:     size,
		SipZone:       h.Metadata[metaSIPZone],
		QueueId:       h.Metadata[metaQueueID],
		EngagementId:  h.Metadata[metaEngagementID],
		ContentType:   h.Metadata[metaContentType],
		KeyMode:       sealgatev1.KeyMode(h.Mode),
		KeyUris:       h.KeyURIs(),
		CreateTime:    metaTime(h.Metadata[metaCreateTime]),
		ExpireTime:    metaTime(h.Metadata[metaExpireTime]),
	}
	for k, v := range h.Metadata {
		if lk, ok := strings.CutPrefix(k, metaLabelPrefix); ok {
			if a.Labels == nil {
				a.Labels = map[string]string{}
			}
			a.Labels[lk] = v
		}
	}
	return a
}

func metaTime(s string) *timestamppb.Timestamp {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return timestamppb.New(t)
}
