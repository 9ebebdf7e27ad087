package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// CheckKeyAccess probes every key the account's policy needs with a live
// wrap and unwrap, bypassing the key cache, and reports each as OK, REVOKED
// or UNAVAILABLE.
func (s *keyService) CheckKeyAccess(ctx context.Context, req *sealgatev1.CheckKeyAccessRequest) (*sealgatev1.CheckKeyAccessResponse, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin, auth.RoleAuditor)
	if err != nil {
		return nil, err
	}
	account, err := g.resolveAccount(ctx, p, req.GetAccount(), "account")
	if err != nil {
		return nil, err
	}
	settings, err := g.cfg.Settings.Get(ctx, account)
	if err != nil {
		return nil, g.toStatus(ctx, "check keys", err)
	}
	if err := g.limits.KeyProbe(account); err != nil {
		return nil, g.toStatus(ctx, "check keys", err)
	}
	kp := settings.GetKeyPolicy()
	_, uris := g.keyURIsFor(kp)
	resp := &sealgatev1.CheckKeyAccessResponse{}
	for i, uri := range uris {
		if i == 0 && uri != g.cfg.ProviderKeyURI {
			if err := g.checkCustomerKey(account, kp); err != nil {
				resp.Keys = append(resp.Keys, &sealgatev1.KeyAccess{KeyUri: uri, State: sealgatev1.KeyAccess_STATE_NOT_ALLOWED,
					Detail: "this key's service is not registered for the account; it was not called"})
				continue
			}
		}
		err := g.probeKey(ctx, account, uri)
		if ctx.Err() != nil {
			return nil, g.toStatus(ctx, "check keys", ctx.Err())
		}
		ka := &sealgatev1.KeyAccess{KeyUri: uri, State: sealgatev1.KeyAccess_STATE_OK}
		switch {
		case err == nil:
		case errors.Is(err, keys.ErrKeyUnavailable), errors.Is(err, context.DeadlineExceeded):
			ka.State, ka.Detail = sealgatev1.KeyAccess_STATE_UNAVAILABLE, "the key service could not be reached"
		default:
			ka.State, ka.Detail = sealgatev1.KeyAccess_STATE_REVOKED, keyProblem(err)
		}
		resp.Keys = append(resp.Keys, ka)
	}
	return resp, nil
}

// keyProblem describes a key failure without internals.
func keyProblem(err error) string {
	switch {
	case errors.Is(err, keys.ErrKeyRevoked):
		return "the key is disabled, deleted or access to it was revoked"
	case errors.Is(err, keys.ErrUnknownKey):
		return "no key driver serves this key URI"
	case errors.Is(err, keys.ErrIntegrity):
		return "the key answered, but not as the key named"
	case errors.Is(err, keys.ErrKeyNotAllowed):
		return "this key's service is not registered for the account"
	}
	return "the key failed the probe"
}

// probeKey wraps and unwraps a random value with the KEK uri directly, so
// that it checks access now, not a cached intermediate key.
func (g *Gateway) probeKey(ctx context.Context, account, uri string) (err error) {
	defer func() { g.record(ctx, audit.KindKeyCheck, account, "", []string{uri}, err) }()
	w, err := g.cfg.Keyring.Wrapper(ctx, uri)
	if err != nil {
		return err
	}
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	ec := keys.EncryptionContext{keys.ContextAccount: account, "probe": "sealgate key check"}
	wrapped, err := w.Wrap(ctx, probe, ec)
	if err != nil {
		return err
	}
	got, err := w.Unwrap(ctx, wrapped, ec)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, probe) {
		return fmt.Errorf("%w: probe came back different", keys.ErrIntegrity)
	}
	return nil
}

// resolveAccount parses "accounts/{account}" in field and checks that the
// caller owns it; another account answers like a missing one.
func (g *Gateway) resolveAccount(ctx context.Context, p *auth.Principal, name, field string) (string, error) {
	account, ok := layout.ParseAccountName(name)
	if !ok {
		return "", invalidArgument(field, "want accounts/{account}", ReasonInvalidArgument)
	}
	if account != p.Account {
		g.otherAccount(ctx, p, name)
		return "", newStatus(codes.NotFound, "account not found", ReasonAccountNotFound, nil)
	}
	return account, nil
}

// rewrapProgressEvery is how many artifacts pass between progress messages.
const rewrapProgressEvery = 25

// RewrapArtifacts re-wraps every artifact of the account under a key policy
// (the request's, else the account's current one) by rewriting each object's
// key section: bodies are copied, never re-encrypted. Artifacts already under
// the target keys are skipped, so the call is idempotent; it resumes after
// resume_token. Artifacts that fail their integrity check are counted and
// left alone; a key error (revoked, unavailable) ends the call, and the
// resume token of the last progress message says where to go on.
func (s *keyService) RewrapArtifacts(req *sealgatev1.RewrapArtifactsRequest, stream sealgatev1.KeyService_RewrapArtifactsServer) error {
	g := s.g
	ctx := stream.Context()
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return err
	}
	account, err := g.resolveAccount(ctx, p, req.GetAccount(), "account")
	if err != nil {
		return err
	}
	kp := req.GetKeyPolicy()
	if kp == nil {
		settings, err := g.cfg.Settings.Get(ctx, account)
		if err != nil {
			return g.toStatus(ctx, "rewrap", err)
		}
		kp = settings.GetKeyPolicy()
		if err := g.checkCustomerKey(account, kp); err != nil {
			return keyNotAllowed()
		}
	} else if err := g.validateKeyPolicy(kp); err != nil {
		return err
	} else if err := g.checkCustomerKey(account, kp); err != nil {
		return keyPolicyStatus("key_policy.customer_key_uri", err)
	}
	if err := g.limits.KeyProbe(account); err != nil {
		return g.toStatus(ctx, "rewrap", err)
	}
	mode, uris := g.keyURIsFor(kp)
	for _, uri := range uris {
		if err := g.probeKey(ctx, account, uri); err != nil {
			return g.toStatus(ctx, "rewrap", err)
		}
	}
	_, wrappers, err := g.keysFor(ctx, account, kp)
	if err != nil {
		return g.toStatus(ctx, "rewrap", err)
	}
	// Artifacts already under these keys are skipped; an alias is compared
	// by the key it names now, which is what new slots record.
	resolved := make([]string, len(uris))
	for i, uri := range uris {
		if resolved[i], err = g.cfg.Keyring.ResolveKeyURI(ctx, uri, account); err != nil {
			return g.toStatus(ctx, "rewrap", err)
		}
	}
	cursor := req.GetResumeToken()
	if cursor != "" {
		if cursor, err = decodePageToken(cursor); err != nil {
			return invalidArgument("resume_token", "not a token from a previous RewrapArtifacts call", ReasonInvalidArgument)
		}
	}
	total, err := g.countArtifacts(ctx, account)
	if err != nil {
		return g.toStatus(ctx, "rewrap", err)
	}
	prog := &sealgatev1.RewrapArtifactsResponse{ArtifactsTotal: total, ResumeToken: req.GetResumeToken()}
	for n := 0; ; {
		batch, next, _, exhausted, err := g.listBatch(ctx, account, cursor, 100)
		if err != nil {
			return g.toStatus(ctx, "rewrap", err)
		}
		for _, e := range batch {
			changed, err := g.rewrapEverywhere(ctx, e, mode, resolved, wrappers)
			switch {
			case errors.Is(err, keys.ErrIntegrity) || errors.Is(err, keys.ErrFormat):
				prog.ArtifactsFailed++
				if len(prog.FailedNames) < 100 {
					prog.FailedNames = append(prog.FailedNames, e.ref.Name())
				}
			case err != nil:
				stream.Send(prog) // the resume point, before the failure
				return g.toStatus(ctx, "rewrap", err)
			case changed:
				prog.ArtifactsDone++
			default:
				prog.ArtifactsSkipped++
			}
			g.record(ctx, audit.KindRewrap, account, e.ref.Name(), uris, err)
			cursor = e.id
			prog.ResumeToken = encodePageToken(cursor)
			if n++; n%rewrapProgressEvery == 0 {
				if err := stream.Send(prog); err != nil {
					return err
				}
			}
		}
		if exhausted {
			break
		}
		cursor = max(cursor, next) // past keys that are not artifacts
	}
	g.log.InfoContext(ctx, "artifacts re-wrapped", "account", account, "done", prog.ArtifactsDone,
		"skipped", prog.ArtifactsSkipped, "failed", prog.ArtifactsFailed, "mode", mode.String())
	return stream.Send(prog)
}

// rewrapEverywhere re-wraps every copy of an artifact: mid-move it has a
// staged and a stored copy, and the mover must not carry an old-key staged
// copy over a re-wrapped stored one.
func (g *Gateway) rewrapEverywhere(ctx context.Context, e listEntry, mode keys.Mode, uris []string, wrappers []keys.ShareWrapper) (bool, error) {
	changed := false
	var opener keys.SlotOpener = g.cfg.Keys
	if g.cfg.Lifecycle != nil {
		rec, _, err := g.cfg.Lifecycle.Load(ctx, e.ref)
		if err != nil {
			return false, err
		}
		if rec != nil && rec.Redaction != nil && rec.Redaction.Next != "" {
			// The redactor is replacing the object: a rewrite now could
			// put the old version back. Its new version is sealed under
			// the current key policy anyway.
			return false, fmt.Errorf("gateway: %s is being redacted; re-wrap it later", e.ref.Name())
		}
		opener = g.opener(lifecycleState{rec: rec})
	}
	for _, loc := range g.locations(e.ref) {
		info, err := loc.bucket.Stat(ctx, loc.key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return changed, err
		}
		loc.size = info.Size
		c, err := g.rewrapOne(ctx, listEntry{id: e.id, ref: e.ref, loc: loc}, mode, uris, wrappers, opener)
		if errors.Is(err, store.ErrNotFound) {
			continue // moved on meanwhile
		}
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

// rewrapOne rewrites one object's key section when it is not already under
// mode and uris. It reports whether it changed the object.
func (g *Gateway) rewrapOne(ctx context.Context, e listEntry, mode keys.Mode, uris []string, wrappers []keys.ShareWrapper, opener keys.SlotOpener) (bool, error) {
	h, body, c, err := openAt(ctx, e.ref, e.loc, -1)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if h.Mode == mode && slices.Equal(h.KeyURIs(), uris) {
		return false, nil
	}
	nh, err := h.Rewrap(ctx, opener, mode, wrappers)
	if err != nil {
		return false, err
	}
	hb, err := nh.Encode()
	if err != nil {
		return false, err
	}
	// The body is copied to its end, whatever size a Stat said earlier (a
	// concurrent rewrite may have changed the header's length), and the Put
	// fails unless the copied body is a whole sealed body for this header.
	// The source is closed as soon as it is drained: a store may not commit
	// the new version of a key while a reader of the old one is open.
	checked := &bodyCheck{r: &closeAtEOF{r: body, c: c}, h: h}
	if err := e.loc.bucket.Put(ctx, e.loc.key, io.MultiReader(bytes.NewReader(hb), checked), -1); err != nil {
		return false, err
	}
	return true, nil
}

// bodyCheck counts a body as it is copied and, at its end, fails instead of
// reporting EOF when the length is not one a sealed body can have.
type bodyCheck struct {
	r io.Reader
	h *keys.Header
	n int64
}

func (b *bodyCheck) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		if _, perr := b.h.PlaintextSize(b.n); perr != nil {
			return n, perr
		}
	}
	return n, err
}

// countArtifacts counts the account's artifacts by listing alone.
func (g *Gateway) countArtifacts(ctx context.Context, account string) (int64, error) {
	var n int64
	cursor := ""
	for {
		batch, next, _, exhausted, err := g.listBatch(ctx, account, cursor, 1000)
		if err != nil {
			return 0, err
		}
		n += int64(len(batch))
		if exhausted {
			return n, nil
		}
		cursor = next
	}
}

// closeAtEOF closes c once r is exhausted.
type closeAtEOF struct {
	r io.Reader
	c io.Closer
}

func (x *closeAtEOF) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err == io.EOF && x.c != nil {
		x.c.Close()
		x.c = nil
	}
	return n, err
}

// validateKeyPolicy checks a key policy given in a request.
func (g *Gateway) validateKeyPolicy(kp *sealgatev1.KeyPolicy) error {
	probe := &sealgatev1.AccountSettings{HomeRegion: "us", KeyPolicy: kp}
	return g.toStatus(context.Background(), "key policy", policy.Validate(probe, g.cfg.Topology, g.cfg.CustomerKeySchemes))
}

// checkNewKeys probes the keys of a changed key policy before it is saved:
// an account must never be switched to a key that cannot serve it.
func (g *Gateway) checkNewKeys(ctx context.Context, account string, kp *sealgatev1.KeyPolicy) error {
	if err := g.checkCustomerKey(account, kp); err != nil {
		return keyPolicyStatus("key_policy.customer_key_uri", err)
	}
	if err := g.limits.KeyProbe(account); err != nil {
		return g.toStatus(ctx, "probe key", err)
	}
	_, uris := g.keyURIsFor(kp)
	for _, uri := range uris {
		err := g.probeKey(ctx, account, uri)
		if errors.Is(err, keys.ErrKeyNotAllowed) {
			return keyPolicyStatus("key_policy.customer_key_uri", err)
		}
		if errors.Is(err, keys.ErrUnknownKey) {
			return invalidArgument("key_policy.customer_key_uri", "no key driver serves this key URI", ReasonInvalidArgument)
		}
		if errors.Is(err, keys.ErrIntegrity) {
			return invalidArgument("key_policy.customer_key_uri", "the key answered, but not as the key named", ReasonInvalidArgument)
		}
		if err != nil {
			return g.toStatus(ctx, "probe key", err)
		}
	}
	return nil
}
