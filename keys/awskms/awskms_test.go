package awskms_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/sealgate/sealgate/integration/servers"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
	"github.com/sealgate/sealgate/keys/keystest"
)

// startKMS starts local-kms for one test and points the SDK's default chain
// at it, so that a zero Opener finds it through AWS_ENDPOINT_URL_KMS.
func startKMS(t *testing.T) (*servers.LocalKMS, *awskms.Opener) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts local-kms; skipped with -short")
	}
	k := servers.StartLocalKMS(t)
	k.Setenv(t)
	return k, &awskms.Opener{Regions: []string{k.Region}, Accounts: []awskms.Account{{ID: k.AccountID, Accounts: []string{"*"}}}}
}

func open(t *testing.T, o *awskms.Opener, arn string) keys.Wrapper {
	t.Helper()
	w, err := o.OpenWrapper(context.Background(), awskms.Scheme+"://"+arn)
	if err != nil {
		t.Fatalf("OpenWrapper(%s): got error %v, want a wrapper", arn, err)
	}
	return w
}

func arnOf(w keys.Wrapper) string {
	return strings.TrimPrefix(w.KeyURI(), awskms.Scheme+"://")
}

// unreachable returns a Wrapper for w's key whose client talks to a closed
// port on 127.0.0.1.
func unreachable(t *testing.T, w keys.Wrapper) keys.Wrapper {
	t.Helper()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", servers.FreePort(t))
	c, err := awskms.NewClient(context.Background(), servers.LocalKMSRegion, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	u, err := awskms.New(c, w.KeyURI())
	if err != nil {
		t.Fatalf("New(%s): %v", w.KeyURI(), err)
	}
	return u
}

func TestConformance(t *testing.T) {
	k, o := startKMS(t)
	keystest.RunConformance(t, keystest.Harness{
		NewWrapper:  func(t *testing.T) keys.Wrapper { return open(t, o, k.CreateKey(t)) },
		Revoke:      func(t *testing.T, w keys.Wrapper) { k.DisableKey(t, arnOf(w)) },
		Restore:     func(t *testing.T, w keys.Wrapper) { k.EnableKey(t, arnOf(w)) },
		Unreachable: unreachable,
	})
}

func TestAliasURI(t *testing.T) {
	k, o := startKMS(t)
	arn := k.CreateKey(t)
	byKey := open(t, o, arn)
	byAlias := open(t, o, k.CreateAlias(t, "acme", arn))
	ec := keystest.Context("acct-a", "artifact-1")
	pt := bytes.Repeat([]byte{7}, 32)
	for name, pair := range map[string][2]keys.Wrapper{
		"wrap by alias, unwrap by key":   {byAlias, byKey},
		"wrap by key, unwrap by alias":   {byKey, byAlias},
		"wrap by alias, unwrap by alias": {byAlias, byAlias},
	} {
		wrapped := mustWrap(t, pair[0], pt, ec)
		got, err := pair[1].Unwrap(context.Background(), wrapped, ec)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: got %x, %v; want %x, nil", name, got, err, pt)
		}
	}
	// A slot naming an alias (written before aliases were resolved at wrap
	// time) decrypts with the key its blob names, within the alias's region
	// and account: after the alias moves on, old artifacts stay readable.
	other := open(t, o, k.CreateKey(t))
	if got, err := byAlias.Unwrap(context.Background(), mustWrap(t, other, pt, ec), ec); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("alias slot of a key the alias no longer names: got %x, %v; want the data key", got, err)
	}
	// A key slot never decrypts another key's blob.
	_, err := byKey.Unwrap(context.Background(), mustWrap(t, other, pt, ec), ec)
	wantClass(t, "key unwrapping another key's wrapped key", err, keys.ErrIntegrity)
}

func TestScheduleKeyDeletion(t *testing.T) {
	k, o := startKMS(t)
	ctx := context.Background()
	w := open(t, o, k.CreateKey(t))
	ec := keystest.Context("acct-d", "artifact-d")
	pt := bytes.Repeat([]byte{3}, 32)
	wrapped := mustWrap(t, w, pt, ec)

	k.ScheduleKeyDeletion(t, arnOf(w))
	_, err := w.Unwrap(ctx, wrapped, ec)
	wantClass(t, "unwrap with a key pending deletion", err, keys.ErrKeyRevoked)
	_, err = w.Wrap(ctx, pt, ec)
	wantClass(t, "wrap with a key pending deletion", err, keys.ErrKeyRevoked)

	// local-kms supports CancelKeyDeletion (and, unlike AWS, enables the key
	// again itself); EnableKey makes this hold on AWS too.
	k.CancelKeyDeletion(t, arnOf(w))
	k.EnableKey(t, arnOf(w))
	got, err := w.Unwrap(ctx, wrapped, ec)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unwrap after CancelKeyDeletion and EnableKey: got %x, %v; want %x, nil", got, err, pt)
	}
}

func TestKMSDown(t *testing.T) {
	k, o := startKMS(t)
	ctx := context.Background()
	w := open(t, o, k.CreateKey(t))
	ec := keystest.Context("acct-k", "artifact-k")
	pt := bytes.Repeat([]byte{5}, 32)
	wrapped := mustWrap(t, w, pt, ec)

	k.Stop()
	start := time.Now()
	_, err := w.Unwrap(ctx, wrapped, ec)
	wantClass(t, "unwrap with local-kms stopped", err, keys.ErrKeyUnavailable)
	_, err = w.Wrap(ctx, pt, ec)
	wantClass(t, "wrap with local-kms stopped", err, keys.ErrKeyUnavailable)
	// Not a timing benchmark: a bound far above the expected few seconds
	// that catches retries or timeouts of minutes.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("two calls with KMS down took %v, want a few seconds", d)
	}
	t.Logf("two calls with KMS down failed in %v", time.Since(start).Round(time.Millisecond))

	k.Restart(t)
	got, err := w.Unwrap(ctx, wrapped, ec)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unwrap after Restart: got %x, %v; want %x, nil", got, err, pt)
	}
}

func TestOtherKeyIsIntegrityFailure(t *testing.T) {
	k, o := startKMS(t)
	a, b := open(t, o, k.CreateKey(t)), open(t, o, k.CreateKey(t))
	ec := keystest.Context("acct-a", "artifact-1")
	wrapped := mustWrap(t, a, bytes.Repeat([]byte{9}, 32), ec)
	_, err := b.Unwrap(context.Background(), wrapped, ec)
	wantClass(t, "key A's wrapped key unwrapped with key B", err, keys.ErrIntegrity)
}

// TestContextDigest shows why Wrap adds the ContextDigestKey pair: local-kms
// joins context pairs without delimiters, so a raw Encrypt under {"ab":"c"}
// decrypts under {"a":"bc"}. With the digest pair the Wrapper refuses. It
// also pins the pairs a wrapped key needs, for decrypting by hand.
func TestContextDigest(t *testing.T) {
	k, o := startKMS(t)
	ctx := context.Background()
	arn := k.CreateKey(t)
	w := open(t, o, arn)
	pt := bytes.Repeat([]byte{1}, 32)
	wrote, read := keys.EncryptionContext{"ab": "c"}, keys.EncryptionContext{"a": "bc"}

	enc, err := k.Client().Encrypt(ctx, &kms.EncryptInput{KeyId: &arn, Plaintext: pt, EncryptionContext: wrote})
	if err != nil {
		t.Fatalf("raw Encrypt: %v", err)
	}
	_, err = k.Client().Decrypt(ctx, &kms.DecryptInput{KeyId: &arn, CiphertextBlob: enc.CiphertextBlob, EncryptionContext: read})
	if err == nil {
		t.Logf("local-kms gap present: raw pairs %v decrypt under %v", wrote, read)
	} else {
		t.Logf("local-kms no longer confuses %v with %v (%v); the digest pair still binds them", wrote, read, err)
	}

	wrapped := mustWrap(t, w, pt, wrote)
	_, err = w.Unwrap(ctx, wrapped, read)
	wantClass(t, fmt.Sprintf("Wrapper: context %v unwrapped as %v", wrote, read), err, keys.ErrIntegrity)

	// By hand: strip the framing; the pairs plus the digest pair open the
	// blob, and the tag matches; the pairs alone do not open it.
	if wrapped[0] != 1 {
		t.Fatalf("wrapped key format byte: got %d, want 1", wrapped[0])
	}
	blob := wrapped[1 : len(wrapped)-32]
	sum := sha256.Sum256(wrote.Encode())
	withDigest := map[string]string{"ab": "c", awskms.ContextDigestKey: hex.EncodeToString(sum[:])}
	dec, err := k.Client().Decrypt(ctx, &kms.DecryptInput{KeyId: &arn, CiphertextBlob: blob, EncryptionContext: withDigest})
	if err != nil || !bytes.Equal(dec.Plaintext, pt) {
		t.Fatalf("raw Decrypt with the digest pair: got err %v, want the key back", err)
	}
	if got := frame(dec.Plaintext, blob); !bytes.Equal(got, wrapped) {
		t.Fatalf("framing by hand: got %x, want %x", got, wrapped)
	}
	if _, err := k.Client().Decrypt(ctx, &kms.DecryptInput{KeyId: &arn, CiphertextBlob: blob, EncryptionContext: wrote}); err == nil {
		t.Fatalf("raw Decrypt without the digest pair: got the key, want an error")
	}
}

// TestBlobTag shows why Wrap frames the KMS blob with a tag: local-kms keeps
// the key ARN at the head of its blob outside the AEAD and ignores it when
// Decrypt names the key, so a raw blob with a flipped bit there decrypts.
// The Wrapper refuses the same flip.
func TestBlobTag(t *testing.T) {
	k, o := startKMS(t)
	ctx := context.Background()
	arn := k.CreateKey(t)
	w := open(t, o, arn)
	pt := bytes.Repeat([]byte{2}, 32)
	ec := keystest.Context("acct-a", "artifact-1")

	enc, err := k.Client().Encrypt(ctx, &kms.EncryptInput{KeyId: &arn, Plaintext: pt})
	if err != nil {
		t.Fatalf("raw Encrypt: %v", err)
	}
	flipped := bytes.Clone(enc.CiphertextBlob)
	flipped[len(flipped)/2] ^= 1
	if _, err := k.Client().Decrypt(ctx, &kms.DecryptInput{KeyId: &arn, CiphertextBlob: flipped}); err == nil {
		t.Logf("local-kms gap present: a blob with bit %d flipped decrypts", len(flipped)/2)
	} else {
		t.Logf("local-kms now refuses a flipped blob header (%v); the tag still guards it", err)
	}

	wrapped := mustWrap(t, w, pt, ec)
	for i := 1; i < len(wrapped); i += 7 {
		bad := bytes.Clone(wrapped)
		bad[i] ^= 1
		_, err := w.Unwrap(ctx, bad, ec)
		wantClass(t, fmt.Sprintf("wrapped key with bit flipped at %d", i), err, keys.ErrIntegrity)
	}
}

func mustWrap(t *testing.T, w keys.Wrapper, pt []byte, ec keys.EncryptionContext) []byte {
	t.Helper()
	out, err := w.Wrap(context.Background(), pt, ec)
	if err != nil {
		t.Fatalf("Wrap: got error %v, want none", err)
	}
	return out
}

// wantClass checks that err is of class and of no other error class.
func wantClass(t *testing.T, name string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s: got error %v, want %v", name, err, class)
	}
	for _, other := range []error{keys.ErrKeyRevoked, keys.ErrKeyUnavailable, keys.ErrIntegrity} {
		if other != class && errors.Is(err, other) {
			t.Errorf("%s: got error %v, also %v; want only %v", name, err, other, class)
		}
	}
	if err != nil && !strings.HasPrefix(err.Error(), "awskms: ") {
		t.Errorf("%s: got message %q, want it to start with \"awskms: \"", name, err)
	}
}
