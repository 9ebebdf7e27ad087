package awskms_test

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
)

// These tests need no KMS: a fake answers with the status, error code or
// body that local-kms cannot produce, so they run with -short too.

const (
	testARN  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	otherARN = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

// fakeKMS answers every request with status and body, after delay.
func fakeKMS(t *testing.T, status int, body string, delay time.Duration) keys.Wrapper {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice a client that hangs up
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		rw.WriteHeader(status)
		fmt.Fprint(rw, body)
	}))
	t.Cleanup(srv.Close)
	c := kms.New(kms.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      aws.AnonymousCredentials{},
		RetryMaxAttempts: 1,
	})
	w, err := awskms.New(c, awskms.Scheme+"://"+testARN)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// frame returns blob framed as Wrap does, with the tag for plaintext pt:
// the format the package documentation gives for decrypting by hand.
func frame(pt, blob []byte) []byte {
	k, err := hkdf.Key(sha256.New, pt, nil, "sealgate awskms blob tag v1", 32)
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, k)
	m.Write(blob)
	return append(append([]byte{1}, blob...), m.Sum(nil)...)
}

func errorBody(code string) string {
	return fmt.Sprintf(`{"__type":%q,"message":"fake %s"}`, code, code)
}

func TestErrorClasses(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		want   error
	}{
		{400, "DisabledException", keys.ErrKeyRevoked},
		{400, "KMSInvalidStateException", keys.ErrKeyRevoked},
		{400, "NotFoundException", keys.ErrKeyRevoked},
		{400, "AccessDeniedException", keys.ErrKeyRevoked},
		{400, "InvalidCiphertextException", keys.ErrIntegrity},
		{400, "IncorrectKeyException", keys.ErrWrongKey},
		{500, "KMSInternalException", keys.ErrKeyUnavailable},
		{500, "DependencyTimeoutException", keys.ErrKeyUnavailable},
		{500, "KeyUnavailableException", keys.ErrKeyUnavailable},
		{400, "ThrottlingException", keys.ErrKeyUnavailable},
		{400, "LimitExceededException", keys.ErrKeyUnavailable},
		{400, "UnrecognizedClientException", keys.ErrKeyUnavailable},
		{503, "", keys.ErrKeyUnavailable},
		{502, "SomethingNew", keys.ErrKeyUnavailable},
		{429, "", keys.ErrKeyUnavailable},
		{400, "ValidationException", keys.ErrKeyRevoked},
		{400, "InvalidKeyUsageException", keys.ErrKeyRevoked},
	} {
		name := fmt.Sprintf("%d %s", c.status, c.code)
		body := "{}"
		if c.code != "" {
			body = errorBody(c.code)
		}
		w := fakeKMS(t, c.status, body, 0)
		_, err := w.Wrap(context.Background(), []byte("secret-data-key-0123456789abcdef"), keys.EncryptionContext{"account": "a"})
		checkClass(t, "wrap, "+name, err, c.want)
		_, err = w.Unwrap(context.Background(), frame([]byte("k"), []byte("blob")), keys.EncryptionContext{"account": "a"})
		checkClass(t, "unwrap, "+name, err, c.want)
	}
}

func checkClass(t *testing.T, name string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want %v", name, want)
		return
	}
	for _, class := range []error{keys.ErrKeyRevoked, keys.ErrKeyUnavailable, keys.ErrIntegrity, keys.ErrWrongKey} {
		if got := errors.Is(err, class); got != (class == want) {
			t.Errorf("%s: got error %v, errors.Is(%v) = %v; want class %v", name, err, class, got, want)
		}
	}
	if !strings.HasPrefix(err.Error(), "awskms: ") {
		t.Errorf("%s: got message %q, want it to start with \"awskms: \"", name, err)
	}
	if strings.Contains(err.Error(), "secret-data-key") {
		t.Errorf("%s: got message %q, want no plaintext in it", name, err)
	}
}

func TestUnwrapChecksAnsweringKeyAndTag(t *testing.T) {
	pt := []byte("0123456789abcdef0123456789abcdef")
	blob := []byte("kms-blob")
	answer := func(keyID string) string {
		b, _ := json.Marshal(map[string]string{"KeyId": keyID, "Plaintext": base64.StdEncoding.EncodeToString(pt)})
		return string(b)
	}
	ec := keys.EncryptionContext{"account": "a"}
	ctx := context.Background()
	got, err := fakeKMS(t, 200, answer(testARN), 0).Unwrap(ctx, frame(pt, blob), ec)
	if err != nil || string(got) != string(pt) {
		t.Fatalf("answered by the expected key: got %q, %v; want the key, nil", got, err)
	}
	got, err = fakeKMS(t, 200, answer(otherARN), 0).Unwrap(ctx, frame(pt, blob), ec)
	if got != nil {
		t.Errorf("answered by another key: got plaintext %q, want none", got)
	}
	checkClass(t, "answered by another key", err, keys.ErrWrongKey)
	got, err = fakeKMS(t, 200, answer(testARN), 0).Unwrap(ctx, frame([]byte("another data key"), blob), ec)
	if got != nil {
		t.Errorf("tag of another data key: got plaintext %q, want none", got)
	}
	checkClass(t, "tag of another data key", err, keys.ErrIntegrity)
}

func TestUnwrapRejectsBadFraming(t *testing.T) {
	w := fakeKMS(t, 500, errorBody("KMSInternalException"), 0)
	good := frame([]byte("k"), []byte("blob"))
	otherVersion := append([]byte{2}, good[1:]...)
	for name, wrapped := range map[string][]byte{
		"empty":             nil,
		"tag only":          good[len(good)-32:],
		"version and tag":   append([]byte{1}, good[len(good)-32:]...),
		"format version 2":  otherVersion,
		"blob over 6144 B":  frame([]byte("k"), make([]byte, 6145)),
		"raw KMS blob only": []byte("blob"),
	} {
		_, err := w.Unwrap(context.Background(), wrapped, nil)
		checkClass(t, name, err, keys.ErrIntegrity)
	}
}

func TestContextDeadline(t *testing.T) {
	w := fakeKMS(t, 200, "{}", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := w.Wrap(ctx, []byte{1}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wrap past its deadline: got %v, want context.DeadlineExceeded", err)
	}
	_, err = w.Unwrap(ctx, frame([]byte("k"), []byte("blob")), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Unwrap past its deadline: got %v, want context.DeadlineExceeded", err)
	}
}

func TestReservedContextEntry(t *testing.T) {
	w := fakeKMS(t, 500, errorBody("KMSInternalException"), 0)
	ec := keys.EncryptionContext{awskms.ContextDigestKey: "x"}
	_, err := w.Wrap(context.Background(), []byte{1}, ec)
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("Wrap with %q in the context: got %v, want a reserved-entry error", awskms.ContextDigestKey, err)
	}
	checkClass(t, "wrap with a reserved entry", err, nil)
	_, err = w.Unwrap(context.Background(), frame([]byte("k"), []byte("blob")), ec)
	checkClass(t, "unwrap with a reserved entry", err, keys.ErrIntegrity)
}

func TestOpenWrapperURIs(t *testing.T) {
	o := &awskms.Opener{Client: kms.New(kms.Options{Region: "us-east-1"}),
		Regions:  []string{"us-east-1", "eu-west-2", "us-gov-west-1"},
		Accounts: []awskms.Account{{ID: "111122223333", Accounts: []string{"*"}}}}
	for _, uri := range []string{
		"",
		"local://provider",
		"hcvault://127.0.0.1:8200/transit/keys/acme",
		"aws-kms://",
		testARN,
		"aws-kms://" + strings.Replace(testARN, ":kms:", ":s3:", 1),
		"aws-kms://arn:aws:kms:us-east-1:1111:key/abc",
		"aws-kms://arn:aws:kms:us-east-1:111122223333:key/",
		"aws-kms://arn:aws:kms:us-east-1:111122223333:grant/abc",
		"aws-kms://arn:aws:kms::111122223333:key/abc",
		"aws-kms://" + testARN + "/extra",
		"aws-kms://" + testARN + " ",
	} {
		if _, err := o.OpenWrapper(context.Background(), uri); !errors.Is(err, keys.ErrUnknownKey) {
			t.Errorf("OpenWrapper(%q): got %v, want ErrUnknownKey", uri, err)
		}
	}
	for _, uri := range []string{
		"aws-kms://" + testARN,
		"aws-kms://arn:aws:kms:eu-west-2:111122223333:alias/acme",
		"aws-kms://arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
	} {
		w, err := o.OpenWrapper(context.Background(), uri)
		if err != nil {
			t.Errorf("OpenWrapper(%q): got %v, want a wrapper", uri, err)
			continue
		}
		if w.KeyURI() != uri {
			t.Errorf("KeyURI(): got %q, want %q", w.KeyURI(), uri)
		}
	}
}
