package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
	// maxScanPerPage bounds the work of one filtered ListArtifacts call; a
	// sparse filter returns a short page and a token to go on.
	maxScanPerPage = 5000
)

// listEntry is one artifact found by listing a region's bucket.
type listEntry struct {
	id  string
	ref layout.Ref
	loc location
}

// ListArtifacts lists an account's artifacts oldest first across every
// region's staging and storage areas, merging the per-region listings by id.
// It reads one header per listed artifact and never scans more than
// maxScanPerPage artifacts per call.
func (s *artifactService) ListArtifacts(ctx context.Context, req *sealgatev1.ListArtifactsRequest) (*sealgatev1.ListArtifactsResponse, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleReader, auth.RoleAuditor, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	account, err := g.resolveAccount(ctx, p, req.GetParent(), "parent")
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalidArgument("page_size", "must not be negative", ReasonInvalidArgument)
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	cursor, err := decodePageToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var end time.Time
	if req.GetCreateTimeEnd() != nil {
		end = req.GetCreateTimeEnd().AsTime()
	}
	if st := req.GetCreateTimeStart(); st != nil {
		if floor := layout.IDFloor(st.AsTime()); floor > cursor {
			cursor = floor
		}
	}
	resp := &sealgatev1.ListArtifactsResponse{}
	scanned := 0
	for len(resp.Artifacts) < size && scanned < maxScanPerPage {
		batch, next, skipped, exhausted, err := g.listBatch(ctx, account, cursor, size)
		if err != nil {
			return nil, g.toStatus(ctx, "list", err)
		}
		scanned += skipped
		for _, e := range batch {
			if t, ok := layout.IDTime(e.id); ok && !end.IsZero() && !t.Before(end) {
				return resp, nil // ids are time ordered: nothing later can match
			}
			cursor = e.id
			scanned++
			a, err := g.describeAt(ctx, e.ref, e.loc)
			if errors.Is(err, store.ErrNotFound) {
				a, err = g.describe(ctx, e.ref) // moved between list and read
			}
			if isStatus(err, codes.NotFound) {
				continue // deleted meanwhile
			}
			if errors.Is(err, keys.ErrIntegrity) || errors.Is(err, keys.ErrFormat) {
				// One damaged object must not stop the listing: reads of it
				// answer DATA_LOSS; the listing goes on past it.
				g.log.ErrorContext(ctx, "unreadable object header in listing", "artifact", e.ref.Name(), "err", err)
				continue
			}
			if err != nil {
				return nil, g.toStatus(ctx, "list", err)
			}
			if a.GetState() == sealgatev1.Artifact_STATE_DELETED && !req.GetShowDeleted() {
				continue
			}
			if matches(req, a) {
				resp.Artifacts = append(resp.Artifacts, a)
				if len(resp.Artifacts) == size {
					break
				}
			}
		}
		consumed := len(batch) == 0 || cursor == lastID(batch)
		if exhausted && consumed {
			return resp, nil
		}
		if consumed && next > cursor {
			// Past keys that are not artifacts (the mover's marker, say):
			// a batch of them must still move the listing on.
			cursor = next
		}
	}
	resp.NextPageToken = encodePageToken(cursor)
	return resp, nil
}

// listBatch returns up to n entries with ids after cursor, in id order,
// merged across every region's staging and storage prefixes. Each source
// is listed n keys at a time, and keys that are not artifacts are skipped
// (counted in skipped), so a source can yield fewer than n entries while
// holding more: no entry past the last key listed of such a source is
// returned, since that source may hold smaller ids not listed yet. next is
// where the following batch starts once every entry returned is taken: the
// last key listed of the source read least far, which is past the skipped
// keys. exhausted is true when no source holds more beyond the entries
// returned.
func (g *Gateway) listBatch(ctx context.Context, account, cursor string, n int) (out []listEntry, next string, skipped int, exhausted bool, err error) {
	byID := map[string]listEntry{}
	frontier, bounded := "", false
	for _, region := range g.cfg.Topology.Regions() {
		b, err := g.cfg.Topology.Bucket(region)
		if err != nil {
			return nil, "", 0, false, err
		}
		for _, area := range []struct {
			prefix string
			state  sealgatev1.Artifact_State
		}{
			{layout.StagingKey(account, ""), sealgatev1.Artifact_STATE_STAGED},
			{layout.StoredKey(account, ""), sealgatev1.Artifact_STATE_STORED},
		} {
			after := ""
			if cursor != "" {
				after = area.prefix + cursor
			}
			objs, err := b.List(ctx, area.prefix, after, n)
			if err != nil {
				return nil, "", 0, false, err
			}
			if len(objs) == n {
				if last := strings.TrimPrefix(objs[n-1].Key, area.prefix); !bounded || last < frontier {
					frontier, bounded = last, true
				}
			}
			for _, o := range objs {
				id := strings.TrimPrefix(o.Key, area.prefix)
				st, sr, ok := layout.ParseArtifactID(id)
				if !ok {
					skipped++
					continue
				}
				prev, seen := byID[id]
				if seen && prev.loc.state == sealgatev1.Artifact_STATE_STORED {
					continue // mid-move: the stored copy wins
				}
				byID[id] = listEntry{id: id, ref: layout.Ref{Account: account, ID: id, Staging: st, Storage: sr}, loc: location{bucket: b, key: o.Key, state: area.state, size: o.Size}}
			}
		}
	}
	out = make([]listEntry, 0, len(byID))
	for _, e := range byID {
		if !bounded || e.id <= frontier {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	next, exhausted = frontier, !bounded
	if len(out) > n {
		out, exhausted = out[:n], false
		next = out[n-1].id
	}
	return out, next, skipped, exhausted, nil
}

func lastID(b []listEntry) string {
	if len(b) == 0 {
		return ""
	}
	return b[len(b)-1].id
}

// matches applies the request's filters to an artifact.
func matches(req *sealgatev1.ListArtifactsRequest, a *sealgatev1.Artifact) bool {
	if req.GetType() != sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED && a.GetType() != req.GetType() {
		return false
	}
	if req.GetEngagementId() != "" && a.GetEngagementId() != req.GetEngagementId() {
		return false
	}
	created := a.GetCreateTime().AsTime()
	if st := req.GetCreateTimeStart(); st != nil && created.Before(st.AsTime()) {
		return false
	}
	if end := req.GetCreateTimeEnd(); end != nil && !created.Before(end.AsTime()) {
		return false
	}
	return true
}

func encodePageToken(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + id))
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	id, ok := strings.CutPrefix(string(b), "v1:")
	if err != nil || !ok {
		return "", invalidArgument("page_token", "not a token from a previous ListArtifacts call", ReasonInvalidArgument)
	}
	if _, _, valid := layout.ParseArtifactID(id); !valid && len(id) != 26 {
		return "", invalidArgument("page_token", "not a token from a previous ListArtifacts call", ReasonInvalidArgument)
	}
	return id, nil
}
