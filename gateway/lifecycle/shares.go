package lifecycle

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sealgate/sealgate/keys"
)

// ErrShredded means the external share of an artifact's data key was
// destroyed: the artifact was purged, and no copy of it can be decrypted.
var ErrShredded = errors.New("lifecycle: the external share of the data key was destroyed (purged)")

// ExternalShare is the keys.ShareWrapper of an artifact's external share: it
// makes the slot that names the share, and keeps the share for the record
// that will hold it.
type ExternalShare struct {
	id    []byte
	share []byte
}

var _ keys.ShareWrapper = (*ExternalShare)(nil)

// WrapShare keeps share and returns the slot that names it.
func (e *ExternalShare) WrapShare(_ context.Context, share []byte, _ keys.EncryptionContext) (keys.Slot, error) {
	id := make([]byte, keys.ExternalShareIDLen)
	if _, err := rand.Read(id); err != nil {
		return keys.Slot{}, fmt.Errorf("lifecycle: share id: %w", err)
	}
	e.id, e.share = id, bytes.Clone(share)
	return keys.Slot{Kind: keys.SlotKindExternal, KeyURI: keys.ExternalShareURI, Wrapped: id}, nil
}

// Record returns the record of a new artifact that holds this share.
func (e *ExternalShare) Record(category, engagement string, created time.Time) *Record {
	return &Record{Shares: map[string][]byte{hex.EncodeToString(e.id): e.share}, Category: category,
		Engagement: engagement, Created: created.UTC()}
}

// Opener opens the slots of one artifact: external shares from its record,
// every other slot through Next (the key cache).
type Opener struct {
	Record *Record
	Next   keys.SlotOpener
}

// UnwrapShare returns the share of slot s. For an external share it returns
// an error wrapping ErrShredded when the record no longer holds it.
func (o Opener) UnwrapShare(ctx context.Context, s keys.Slot, ec keys.EncryptionContext) ([]byte, error) {
	if s.Kind != keys.SlotKindExternal {
		return o.Next.UnwrapShare(ctx, s, ec)
	}
	share := o.Record.Share(s.Wrapped)
	if share == nil {
		return nil, ErrShredded
	}
	return bytes.Clone(share), nil
}
