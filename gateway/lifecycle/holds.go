package lifecycle

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealgate/sealgate/store"
)

// EngagementHold is a legal hold on every artifact of an engagement.
type EngagementHold struct {
	Engagement string    `json:"engagement"`
	Reason     string    `json:"reason"`
	Time       time.Time `json:"time"`
	Creator    string    `json:"creator"`
}

func holdPrefix(account string) string { return "holds/" + account + "/" }

func holdKey(account, engagement string) string {
	return holdPrefix(account) + base64.RawURLEncoding.EncodeToString([]byte(engagement)) + ".json"
}

// PutEngagementHold places (or replaces) a hold on an engagement.
func (s *Store) PutEngagementHold(ctx context.Context, account string, h EngagementHold) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := s.b.Put(ctx, holdKey(account, h.Engagement), strings.NewReader(string(data)), int64(len(data))); err != nil {
		return fmt.Errorf("lifecycle: hold on engagement: %w", err)
	}
	return nil
}

// EngagementHold returns the hold on an engagement, or nil.
func (s *Store) EngagementHold(ctx context.Context, account, engagement string) (*EngagementHold, error) {
	data, _, err := s.b.Load(ctx, holdKey(account, engagement), maxRecordSize)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lifecycle: hold on engagement: %w", err)
	}
	h := &EngagementHold{}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, fmt.Errorf("lifecycle: hold on engagement: %w", err)
	}
	return h, nil
}

// ReleaseEngagementHold removes the hold on an engagement.
func (s *Store) ReleaseEngagementHold(ctx context.Context, account, engagement string) error {
	if err := s.b.Delete(ctx, holdKey(account, engagement)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("lifecycle: release hold on engagement: %w", err)
	}
	return nil
}

// maxHolds bounds the engagement holds one account lists at a time.
const maxHolds = 10000

// EngagementHolds returns every engagement hold of account.
func (s *Store) EngagementHolds(ctx context.Context, account string) ([]EngagementHold, error) {
	var out []EngagementHold
	after := ""
	for len(out) < maxHolds {
		objs, err := s.b.List(ctx, holdPrefix(account), after, store.DefaultListLimit)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: list holds: %w", err)
		}
		for _, o := range objs {
			after = o.Key
			data, _, err := s.b.Load(ctx, o.Key, maxRecordSize)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("lifecycle: hold: %w", err)
			}
			var h EngagementHold
			if json.Unmarshal(data, &h) == nil {
				out = append(out, h)
			}
		}
		if len(objs) < store.DefaultListLimit {
			break
		}
	}
	return out, nil
}
