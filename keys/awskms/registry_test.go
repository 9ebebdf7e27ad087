package awskms_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
)

// recorder is a fake AWS endpoint that records every request and answers
// with answer.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	auth string // the Authorization header
	body string
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func (r *recorder) serve(t *testing.T, answer func(body string) (int, string)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{auth: req.Header.Get("Authorization"), body: string(b)})
		r.mu.Unlock()
		code, out := answer(string(b))
		rw.WriteHeader(code)
		fmt.Fprint(rw, out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// kmsAnswer answers Encrypt with keyARN as the key that did it, and Decrypt
// with plaintext pt from keyARN.
func kmsAnswer(keyARN string, pt []byte) func(string) (int, string) {
	return func(body string) (int, string) {
		out := map[string]string{"KeyId": keyARN, "CiphertextBlob": base64.StdEncoding.EncodeToString([]byte("blob")),
			"Plaintext": base64.StdEncoding.EncodeToString(pt)}
		b, _ := json.Marshal(out)
		return 200, string(b)
	}
}

// pointAWS points the SDK's default chain at fake endpoints.
func pointAWS(t *testing.T, kmsURL, stsURL string) {
	t.Setenv("AWS_ENDPOINT_URL_KMS", kmsURL)
	t.Setenv("AWS_ENDPOINT_URL_STS", stsURL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDDEFAULTCHAIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

func TestOpenerRefusesUnregisteredKeysBeforeAnyCall(t *testing.T) {
	var kmsReqs recorder
	pointAWS(t, kmsReqs.serve(t, kmsAnswer(testARN, make([]byte, 32))), "http://127.0.0.1:1")
	o := &awskms.Opener{Regions: []string{"us-east-1"}, Accounts: []awskms.Account{{ID: "111122223333", Accounts: []string{"acme"}}}}
	ctx := context.Background()
	for _, uri := range []string{
		"aws-kms://arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", // region
		"aws-kms://arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab", // account
		"aws-kms://arn:aws:kms:us-east-1:444455556666:alias/acme",
	} {
		if _, err := o.OpenWrapper(ctx, uri); !errors.Is(err, keys.ErrKeyNotAllowed) {
			t.Errorf("OpenWrapper(%s): got %v, want ErrKeyNotAllowed", uri, err)
		}
		if err := o.CheckAccount(uri, "acme"); !errors.Is(err, keys.ErrKeyNotAllowed) {
			t.Errorf("CheckAccount(%s, acme): got %v, want ErrKeyNotAllowed", uri, err)
		}
	}
	uri := awskms.Scheme + "://" + testARN
	if err := o.CheckAccount(uri, "acme"); err != nil {
		t.Errorf("CheckAccount(registered key, acme): %v", err)
	}
	if err := o.CheckAccount(uri, "globex"); !errors.Is(err, keys.ErrKeyNotAllowed) {
		t.Errorf("CheckAccount(registered key, globex): got %v, want ErrKeyNotAllowed", err)
	}
	w, err := o.OpenWrapper(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	// Per call, the context's account must be registered too.
	if _, err := w.Wrap(ctx, make([]byte, 32), keys.EncryptionContext{keys.ContextAccount: "globex"}); !errors.Is(err, keys.ErrKeyNotAllowed) {
		t.Fatalf("Wrap for globex: got %v, want ErrKeyNotAllowed", err)
	}
	if n := len(kmsReqs.all()); n != 0 {
		t.Fatalf("KMS got %d requests for refused keys and accounts, want 0", n)
	}
	if _, err := w.Wrap(ctx, make([]byte, 32), keys.EncryptionContext{keys.ContextAccount: "acme"}); err != nil {
		t.Fatalf("Wrap for acme: %v", err)
	}
	if n := len(kmsReqs.all()); n != 1 {
		t.Fatalf("KMS got %d requests for one allowed wrap, want 1", n)
	}
}

var akidRE = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func TestAssumedRoleCarriesTheSealgateAccountAsExternalID(t *testing.T) {
	var stsReqs, kmsReqs recorder
	stsURL := stsReqs.serve(t, func(body string) (int, string) {
		form, _ := url.ParseQuery(body)
		akid := "AKIDROLE" + map[string]string{"acme": "ACME", "globex": "GLOBEX"}[form.Get("ExternalId")]
		return 200, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>` + akid + `</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>tok</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/sealgate/x</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`
	})
	pointAWS(t, kmsReqs.serve(t, kmsAnswer(testARN, make([]byte, 32))), stsURL)
	const role = "arn:aws:iam::111122223333:role/sealgate-kms"
	o := &awskms.Opener{Regions: []string{"us-east-1"},
		Accounts: []awskms.Account{{ID: "111122223333", RoleARN: role, Accounts: []string{"acme", "globex"}}}}
	w, err := o.OpenWrapper(context.Background(), awskms.Scheme+"://"+testARN)
	if err != nil {
		t.Fatal(err)
	}
	for _, account := range []string{"acme", "globex", "acme"} {
		if _, err := w.Wrap(context.Background(), make([]byte, 32), keys.EncryptionContext{keys.ContextAccount: account}); err != nil {
			t.Fatalf("Wrap for %s: %v", account, err)
		}
	}
	sts := stsReqs.all()
	if len(sts) != 2 {
		t.Fatalf("STS got %d AssumeRole calls for two accounts (credentials cached), want 2", len(sts))
	}
	for i, want := range []string{"acme", "globex"} {
		form, _ := url.ParseQuery(sts[i].body)
		if form.Get("Action") != "AssumeRole" || form.Get("RoleArn") != role || form.Get("ExternalId") != want {
			t.Errorf("AssumeRole %d: got %v, want RoleArn %s and ExternalId %s", i, form, role, want)
		}
	}
	var got []string
	for _, r := range kmsReqs.all() {
		m := akidRE.FindStringSubmatch(r.auth)
		if m == nil {
			t.Fatalf("KMS request without SigV4 credentials: %q", r.auth)
		}
		got = append(got, m[1])
	}
	if want := []string{"AKIDROLEACME", "AKIDROLEGLOBEX", "AKIDROLEACME"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("KMS calls signed by %v, want each account's own role credentials %v", got, want)
	}
}

func TestAliasIsResolvedAtWrapAndDecryptedByKey(t *testing.T) {
	var kmsReqs recorder
	pt := make([]byte, 32)
	pointAWS(t, kmsReqs.serve(t, kmsAnswer(testARN, pt)), "http://127.0.0.1:1")
	o := &awskms.Opener{Regions: []string{"us-east-1"}, Accounts: []awskms.Account{{ID: "111122223333", Accounts: []string{"*"}}}}
	alias := awskms.Scheme + "://arn:aws:kms:us-east-1:111122223333:alias/acme"
	w, err := o.OpenWrapper(context.Background(), alias)
	if err != nil {
		t.Fatal(err)
	}
	ec := keys.EncryptionContext{keys.ContextAccount: "acme"}
	wrapped, keyURI, err := w.(keys.ResolvingWrapper).WrapResolved(context.Background(), pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	if want := awskms.Scheme + "://" + testARN; keyURI != want {
		t.Fatalf("WrapResolved by alias: key %q, want the key that answered, %q", keyURI, want)
	}
	byKey, err := o.OpenWrapper(context.Background(), keyURI)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := byKey.Unwrap(context.Background(), wrapped, ec); err != nil {
		t.Fatalf("Unwrap by the resolved key: %v", err)
	}
	reqs := kmsReqs.all()
	var enc, dec map[string]any
	json.Unmarshal([]byte(reqs[0].body), &enc)
	json.Unmarshal([]byte(reqs[1].body), &dec)
	if enc["KeyId"] != "arn:aws:kms:us-east-1:111122223333:alias/acme" || dec["KeyId"] != testARN {
		t.Fatalf("Encrypt KeyId %v and Decrypt KeyId %v, want the alias, then the key ARN", enc["KeyId"], dec["KeyId"])
	}
	// An alias whose answer names a key of another AWS account is refused.
	var bad recorder
	pointAWS(t, bad.serve(t, kmsAnswer("arn:aws:kms:us-east-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab", pt)), "http://127.0.0.1:1")
	o2 := &awskms.Opener{Regions: []string{"us-east-1"}, Accounts: []awskms.Account{{ID: "111122223333", Accounts: []string{"*"}}}}
	w2, _ := o2.OpenWrapper(context.Background(), alias)
	if _, _, err := w2.(keys.ResolvingWrapper).WrapResolved(context.Background(), pt, ec); !errors.Is(err, keys.ErrIntegrity) {
		t.Fatalf("alias answered by another account's key: got %v, want ErrIntegrity", err)
	}
}

func TestNoCredentialsIsUnavailableNotInternal(t *testing.T) {
	var kmsReqs recorder
	pointAWS(t, kmsReqs.serve(t, kmsAnswer(testARN, make([]byte, 32))), "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	o := &awskms.Opener{Regions: []string{"us-east-1"}, Accounts: []awskms.Account{{ID: "111122223333", Accounts: []string{"*"}}}}
	w, err := o.OpenWrapper(context.Background(), awskms.Scheme+"://"+testARN)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Wrap(context.Background(), make([]byte, 32), keys.EncryptionContext{keys.ContextAccount: "acme"})
	if !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Fatalf("Wrap without AWS credentials: %v, want ErrKeyUnavailable (KEY_SERVICE_UNAVAILABLE, not INTERNAL)", err)
	}
}

// An alias registered for an account resolves on that account's behalf
// (RewrapArtifacts compares artifacts with the key the alias names now):
// resolving it for no account was refused for every alias registered as the
// docs show, with an account list (second review), and another account may
// not resolve it.
func TestAliasResolvesForItsAccount(t *testing.T) {
	var kmsReqs recorder
	pointAWS(t, kmsReqs.serve(t, func(string) (int, string) {
		return 200, `{"KeyMetadata":{"Arn":"` + testARN + `","KeyId":"` + testARN + `"}}`
	}), "http://127.0.0.1:1")
	o := &awskms.Opener{Regions: []string{"us-east-1"}, Accounts: []awskms.Account{{ID: "111122223333", Accounts: []string{"acme"}}}}
	alias := awskms.Scheme + "://arn:aws:kms:us-east-1:111122223333:alias/acme-current"
	w, err := o.OpenWrapper(context.Background(), alias)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.(keys.ResolvingWrapper).ResolveKeyURI(context.Background(), "acme")
	if want := awskms.Scheme + "://" + testARN; err != nil || got != want {
		t.Fatalf("ResolveKeyURI of acme's alias for acme: %q, %v; want %q", got, err, want)
	}
	if _, err := w.(keys.ResolvingWrapper).ResolveKeyURI(context.Background(), "globex"); !errors.Is(err, keys.ErrKeyNotAllowed) {
		t.Fatalf("ResolveKeyURI of acme's alias for globex: %v; want ErrKeyNotAllowed", err)
	}
}
