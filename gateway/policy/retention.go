package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

const categoryPrefix = "RETENTION_CATEGORY_"

// CategoryName returns the short name of a retention category
// ("RECORDINGS_AND_TRANSCRIPTS"), or "" for none.
func CategoryName(c sealgatev1.RetentionCategory) string {
	if c == sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(c.String(), categoryPrefix)
}

// ParseCategoryName is the inverse of CategoryName.
func ParseCategoryName(s string) (sealgatev1.RetentionCategory, bool) {
	v, ok := sealgatev1.RetentionCategory_value[categoryPrefix+s]
	return sealgatev1.RetentionCategory(v), ok && s != ""
}

// TypeCategory returns the retention category of an artifact type, or ""
// when its content is kept indefinitely whatever the settings (logs).
func TypeCategory(t sealgatev1.ArtifactType) string {
	_, cat, _ := TypeInfo(t)
	return CategoryName(cat)
}

// RetentionOf returns how long s keeps content of category (short name),
// and false when it keeps it indefinitely.
func RetentionOf(s *sealgatev1.AccountSettings, category string) (time.Duration, bool) {
	cat, ok := ParseCategoryName(category)
	if !ok {
		return 0, false
	}
	for _, r := range s.GetRetentionRules() {
		if r.GetCategory() == cat && r.GetRetentionDays() > 0 {
			return time.Duration(r.GetRetentionDays()) * 24 * time.Hour, true
		}
	}
	return 0, false
}

// ExpireTime returns when content of category created at created expires
// under the settings s as they are now (a retention change applies to what
// is stored already), and false when it is kept indefinitely.
func ExpireTime(s *sealgatev1.AccountSettings, category string, created time.Time) (time.Time, bool) {
	d, ok := RetentionOf(s, category)
	if !ok {
		return time.Time{}, false
	}
	return created.Add(d), true
}

// SoftDelete reports whether the account deletes softly (the default).
func SoftDelete(s *sealgatev1.AccountSettings) bool {
	return s.GetDeletionMode() != sealgatev1.DeletionMode_DELETION_MODE_HARD
}

// Accounts lists account ids with settings, in order, after after; at most
// limit.
func (s *SettingsStore) Accounts(ctx context.Context, after string, limit int) ([]string, error) {
	start := ""
	if after != "" {
		start = settingsKey(after)
	}
	objs, err := s.b.List(ctx, "accounts/", start, limit)
	if err != nil {
		return nil, fmt.Errorf("policy: list accounts: %w", err)
	}
	var out []string
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, "accounts/")
		if a, ok := strings.CutSuffix(rest, "/settings.json"); ok && ValidAccountID(a) {
			out = append(out, a)
		}
	}
	return out, nil
}
