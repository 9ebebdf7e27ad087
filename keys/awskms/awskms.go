// Package awskms is the key driver for AWS KMS keys, named by key URIs
// "aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID" or, for an alias,
// "aws-kms://arn:aws:kms:REGION:ACCOUNT:alias/NAME". It is the only package
// of sealgate that imports aws-sdk-go-v2. Clients follow the SDK's default
// configuration chain (credentials, AWS_ENDPOINT_URL_KMS), with the region
// taken from the key's ARN; the Opener serves only registered regions and
// AWS accounts, optionally through a role assumed per sealgate account.
//
// # Aliases
//
// An alias is resolved at every wrap: KMS Encrypt names the key that did the
// encryption, and that key's ARN is what the header records (see
// keys.ResolvingWrapper). Reads decrypt by key ARN, so re-pointing an alias
// changes which key new artifacts use and leaves old ones readable.
//
// # Encryption context
//
// Wrap and Unwrap call KMS Encrypt and Decrypt with every entry of the
// keys.EncryptionContext as a KMS EncryptionContext pair, so that the
// customer's CloudTrail log names the account and artifact of every use of
// their key. One more pair is always added: ContextDigestKey ("sealgate:ec")
// set to the lowercase hex SHA-256 of ec.Encode(), the unambiguous
// length-prefixed encoding of the whole context. AWS KMS binds the context
// pairs unambiguously, but the local-kms emulator joins them without
// delimiters, so {"ab":"c"} and {"a":"bc"} would unwrap each other's keys
// there; the digest entry binds the exact context on any KMS. A context that
// already holds ContextDigestKey is refused. Anyone decrypting a wrapped key
// by hand must pass the same pairs, digest entry included.
//
// # Wrapped key format
//
// Wrap returns a version byte (1), the KMS CiphertextBlob, and a 32-byte tag:
// HMAC-SHA256 over the blob under a key derived from the plaintext data key
// with HKDF-SHA256 (info "sealgate awskms blob tag v1"). Unwrap decrypts the
// blob with KMS and releases the plaintext only when the tag matches. AWS KMS
// authenticates its whole blob, but local-kms leaves the key ARN at the head
// of its blob outside the AEAD (Decrypt with KeyId ignores it), so a flipped
// bit there would still decrypt; the tag makes every bit count on any KMS
// and commits the wrapped bytes to the data key. To decrypt by hand, strip
// the first byte and the last 32, call KMS Decrypt with the blob, the key ARN
// and the context pairs described above, and check the tag.
//
// # Errors
//
// KMS answers map to the error classes of package keys: a disabled key, a
// key pending deletion or deleted, and a denied access are keys.ErrKeyRevoked;
// a wrapped key that does not decrypt, or that a key other than this
// Wrapper's answered for, is keys.ErrIntegrity; network errors, timeouts,
// throttling, KMS internal errors and any 5xx status are
// keys.ErrKeyUnavailable. Error strings start with "awskms: " and never hold
// plaintext or key bytes.
package awskms

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/sealgate/sealgate/keys"
)

// Scheme is the key URI scheme this driver serves.
const Scheme = "aws-kms"

// ContextDigestKey is the name of the encryption context pair that carries
// the SHA-256 of the canonical encoding of the whole context.
const ContextDigestKey = "sealgate:ec"

// Framing of a wrapped key: formatV1, the KMS blob, and a tag of tagLen
// bytes. maxBlob is the largest CiphertextBlob that KMS Decrypt accepts.
const (
	formatV1 = 0x01
	tagLen   = sha256.Size
	maxBlob  = 6144
	tagInfo  = "sealgate awskms blob tag v1"
)

// arnRE matches a KMS key or alias ARN: partition, region, account, and
// "key/ID" or "alias/NAME".
var arnRE = regexp.MustCompile(`^arn:(aws[a-z-]*):kms:([a-z0-9-]+):([0-9]{12}):(key/[A-Za-z0-9-]{1,128}|alias/[A-Za-z0-9/_-]{1,250})$`)

// keyARN is a parsed key URI.
type keyARN struct {
	arn     string
	region  string
	account string
	alias   bool
}

// parseURI parses "aws-kms://ARN". It returns an error wrapping
// keys.ErrUnknownKey for a URI of another scheme or a malformed ARN.
func parseURI(uri string) (keyARN, error) {
	arn, ok := strings.CutPrefix(uri, Scheme+"://")
	if !ok {
		return keyARN{}, fmt.Errorf("%w: %q is not an %s key", keys.ErrUnknownKey, uri, Scheme)
	}
	m := arnRE.FindStringSubmatch(arn)
	if m == nil {
		return keyARN{}, fmt.Errorf("%w: %q is not a KMS key or alias ARN", keys.ErrUnknownKey, uri)
	}
	return keyARN{arn: arn, region: m[2], account: m[3], alias: strings.HasPrefix(m[4], "alias/")}, nil
}

// Wrapper wraps data keys with one AWS KMS key. It is safe for concurrent
// use.
type Wrapper struct {
	uri       string
	key       keyARN
	clientFor func(ctx context.Context, account string) (*kms.Client, error)
}

var _ keys.ResolvingWrapper = (*Wrapper)(nil)

// New returns the Wrapper for uri that calls KMS through client. It returns
// an error wrapping keys.ErrUnknownKey when uri is not an aws-kms URI with a
// well-formed ARN, and an error when client is nil.
func New(client *kms.Client, uri string) (*Wrapper, error) {
	k, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("awskms: nil KMS client")
	}
	return &Wrapper{uri: uri, key: k, clientFor: func(context.Context, string) (*kms.Client, error) { return client, nil }}, nil
}

// KeyURI returns "aws-kms://ARN".
func (w *Wrapper) KeyURI() string { return w.uri }

// Wrap encrypts plaintext with KMS Encrypt under the Wrapper's key, bound to
// ec (see the package documentation). It returns an error wrapping
// keys.ErrKeyRevoked when KMS refuses, keys.ErrKeyUnavailable when KMS
// cannot be reached or fails, keys.ErrKeyNotAllowed when ec's account may
// not use the key, an error satisfying errors.Is(err, ctx.Err()) when ctx
// ends first, and a plain error when ec holds ContextDigestKey.
func (w *Wrapper) Wrap(ctx context.Context, plaintext []byte, ec keys.EncryptionContext) ([]byte, error) {
	wrapped, _, err := w.WrapResolved(ctx, plaintext, ec)
	return wrapped, err
}

// WrapResolved wraps like Wrap and also returns the URI of the key that KMS
// says did the encryption: for an alias, the key it points to now. Unwrap by
// that key keeps the artifact readable after the alias is re-pointed. It
// returns an error wrapping keys.ErrIntegrity when KMS answers with a key
// outside the alias's region and AWS account.
func (w *Wrapper) WrapResolved(ctx context.Context, plaintext []byte, ec keys.EncryptionContext) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("awskms: wrap with %s: %w", w.uri, err)
	}
	kc, err := kmsContext(ec)
	if err != nil {
		return nil, "", err
	}
	client, err := w.clientFor(ctx, ec[keys.ContextAccount])
	if err != nil {
		return nil, "", err
	}
	out, err := client.Encrypt(ctx, &kms.EncryptInput{
		KeyId:             aws.String(w.key.arn),
		Plaintext:         plaintext,
		EncryptionContext: kc,
	})
	if err != nil {
		return nil, "", classify(ctx, "wrap with "+w.uri, err)
	}
	keyURI, err := w.answered(aws.ToString(out.KeyId))
	if err != nil {
		return nil, "", fmt.Errorf("awskms: wrap with %s: %w", w.uri, err)
	}
	t, err := blobTag(plaintext, out.CiphertextBlob)
	if err != nil {
		return nil, "", fmt.Errorf("awskms: wrap with %s: %w", w.uri, err)
	}
	wrapped := make([]byte, 0, 1+len(out.CiphertextBlob)+tagLen)
	wrapped = append(wrapped, formatV1)
	wrapped = append(wrapped, out.CiphertextBlob...)
	return append(wrapped, t...), keyURI, nil
}

// answered returns the key URI of the key ARN that KMS named in its answer,
// checking that it is the Wrapper's key, or for an alias a key of the same
// region and AWS account. It returns an error wrapping keys.ErrIntegrity
// otherwise.
func (w *Wrapper) answered(got string) (string, error) {
	if !w.key.alias {
		if got != w.key.arn {
			return "", fmt.Errorf("%w: answered by key %q, want %q", keys.ErrWrongKey, got, w.key.arn)
		}
		return w.uri, nil
	}
	k, err := parseURI(Scheme + "://" + got)
	if err != nil || k.alias || k.region != w.key.region || k.account != w.key.account {
		return "", fmt.Errorf("%w: alias answered by key %q outside its region and account", keys.ErrIntegrity, got)
	}
	return Scheme + "://" + got, nil
}

// ResolveKeyURI returns the URI of the key the Wrapper names now: its own
// for a key ARN, or for an alias the key it points to (DescribeKey, asked
// anew every time), with account's credentials (its role and external id)
// as Wrap uses them. It returns the errors of classify when DescribeKey
// fails.
func (w *Wrapper) ResolveKeyURI(ctx context.Context, account string) (string, error) {
	if !w.key.alias {
		return w.uri, nil
	}
	client, err := w.clientFor(ctx, account)
	if err != nil {
		return "", err
	}
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(w.key.arn)})
	if err != nil {
		return "", classify(ctx, "resolve alias "+w.uri, err)
	}
	if out.KeyMetadata == nil {
		return "", fmt.Errorf("awskms: resolve alias %s: %w: no key ARN in the answer", w.uri, keys.ErrKeyUnavailable)
	}
	return w.answered(aws.ToString(out.KeyMetadata.Arn))
}

// Unwrap decrypts the blob in wrapped with KMS Decrypt, passing ec as Wrap
// does, checks that the key that answered is the Wrapper's key, and checks
// the tag before it returns the plaintext. A key ARN is named in the call;
// an alias (slots written before aliases were resolved at wrap time) is not,
// so that KMS decrypts with the key the blob names, which must then lie in
// the alias's region and AWS account. It returns an error wrapping
// keys.ErrIntegrity when the framing or tag of wrapped, the key or ec do not
// match, keys.ErrKeyRevoked when KMS refuses, keys.ErrKeyUnavailable when
// KMS cannot be reached or fails, keys.ErrKeyNotAllowed when ec's account
// may not use the key, or an error satisfying errors.Is(err, ctx.Err()) when
// ctx ends first.
func (w *Wrapper) Unwrap(ctx context.Context, wrapped []byte, ec keys.EncryptionContext) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("awskms: unwrap with %s: %w", w.uri, err)
	}
	if len(wrapped) < 1+1+tagLen || len(wrapped) > 1+maxBlob+tagLen || wrapped[0] != formatV1 {
		return nil, fmt.Errorf("awskms: unwrap with %s: %w: not a wrapped key of format %d", w.uri, keys.ErrIntegrity, formatV1)
	}
	blob, tag := wrapped[1:len(wrapped)-tagLen], wrapped[len(wrapped)-tagLen:]
	kc, err := kmsContext(ec)
	if err != nil {
		return nil, fmt.Errorf("awskms: unwrap with %s: %w: %v", w.uri, keys.ErrIntegrity, err)
	}
	client, err := w.clientFor(ctx, ec[keys.ContextAccount])
	if err != nil {
		return nil, err
	}
	in := &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: kc}
	if !w.key.alias {
		in.KeyId = aws.String(w.key.arn)
	}
	out, err := client.Decrypt(ctx, in)
	if err != nil {
		return nil, classify(ctx, "unwrap with "+w.uri, err)
	}
	if _, err := w.answered(aws.ToString(out.KeyId)); err != nil {
		clear(out.Plaintext)
		return nil, fmt.Errorf("awskms: unwrap with %s: %w", w.uri, err)
	}
	if t, err := blobTag(out.Plaintext, blob); err != nil || !hmac.Equal(t, tag) {
		clear(out.Plaintext)
		return nil, fmt.Errorf("awskms: unwrap with %s: %w: wrapped key tag mismatch", w.uri, keys.ErrIntegrity)
	}
	return out.Plaintext, nil
}

// kmsContext returns the KMS EncryptionContext for ec: its entries plus
// ContextDigestKey. It returns an error when ec already holds
// ContextDigestKey.
func kmsContext(ec keys.EncryptionContext) (map[string]string, error) {
	if _, ok := ec[ContextDigestKey]; ok {
		return nil, fmt.Errorf("awskms: encryption context entry %q is reserved", ContextDigestKey)
	}
	kc := make(map[string]string, len(ec)+1)
	for k, v := range ec {
		kc[k] = v
	}
	sum := sha256.Sum256(ec.Encode())
	kc[ContextDigestKey] = hex.EncodeToString(sum[:])
	return kc, nil
}

// blobTag returns HMAC-SHA256 of blob under a key derived from plaintext. It
// returns an error only when HKDF fails, which it does not for a 32-byte key.
func blobTag(plaintext, blob []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, plaintext, nil, tagInfo, sha256.Size)
	if err != nil {
		return nil, errors.New("derive tag key")
	}
	m := hmac.New(sha256.New, k)
	m.Write(blob)
	clear(k)
	return m.Sum(nil), nil
}
