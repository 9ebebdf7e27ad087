package servers

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Fixed identity of every local-kms server that StartLocalKMS runs.
const (
	LocalKMSRegion    = "us-east-1"
	LocalKMSAccountID = "111122223333"
)

// LocalKMS is a running local-kms process, the AWS KMS emulator. Keys live
// in a data directory that survives Stop and Restart.
//
// Known emulator gaps: it binds every interface (":PORT", it has no address
// setting) though clients use 127.0.0.1; it enforces no key policies or
// grants; and it joins encryption context pairs without delimiters, so
// contexts such as {"ab":"c"} and {"a":"bc"} collide.
type LocalKMS struct {
	// Endpoint is the base URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Region and AccountID name the keys: arn:aws:kms:REGION:ACCOUNT:key/ID.
	Region    string
	AccountID string
	// Port is the TCP port and DataPath the key database directory; both
	// stay the same across Restart.
	Port     int
	DataPath string

	proc   *process
	client *kms.Client
}

// StartLocalKMS runs local-kms on a free port of 127.0.0.1 with a data
// directory in t.TempDir(), and waits until it answers ListKeys. The process
// is killed in t.Cleanup. It fails the test when the binary cannot be
// installed or the server does not answer within 30 seconds.
func StartLocalKMS(t testing.TB) *LocalKMS {
	t.Helper()
	bin := Tool(t, "local-kms")
	port := FreePort(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := &LocalKMS{
		Endpoint:  "http://" + hostPort(port),
		Region:    LocalKMSRegion,
		AccountID: LocalKMSAccountID,
		Port:      port,
		DataPath:  data,
	}
	env := []string{
		"PORT=" + strconv.Itoa(port),
		"KMS_DATA_PATH=" + data,
		"KMS_REGION=" + k.Region,
		"KMS_ACCOUNT_ID=" + k.AccountID,
		// A path that does not exist, so no seed file of the host is read.
		"KMS_SEED_PATH=" + filepath.Join(dir, "no-seed.yaml"),
	}
	k.proc = newProcess("local-kms", bin, nil, env, dir)
	k.client = kms.New(kms.Options{
		Region:       k.Region,
		BaseEndpoint: aws.String(k.Endpoint),
		Credentials:  aws.AnonymousCredentials{},
	})
	t.Cleanup(k.Stop)
	k.start(t)
	return k
}

func (k *LocalKMS) start(t testing.TB) {
	t.Helper()
	if err := k.proc.start(); err != nil {
		t.Fatal(err)
	}
	dial := dialable(hostPort(k.Port))
	k.proc.waitReady(t, func(ctx context.Context) error {
		if err := dial(ctx); err != nil {
			return err
		}
		_, err := k.client.ListKeys(ctx, &kms.ListKeysInput{}, noRetry)
		return err
	})
}

// Stop kills the process with SIGKILL and waits for it to exit, simulating
// a KMS that went down. It is safe to call more than once.
func (k *LocalKMS) Stop() { k.proc.stop() }

// Restart stops the process if it runs and starts it again on the same port
// with the same data directory, so every key survives. It fails the test
// when the server does not answer within 30 seconds.
func (k *LocalKMS) Restart(t testing.TB) {
	t.Helper()
	k.Stop()
	k.start(t)
}

// Env returns the environment that points the AWS SDK's default config
// chain at this server: AWS_ENDPOINT_URL_KMS, AWS_REGION and dummy static
// credentials. It also blanks the variables that could point the chain
// elsewhere (a profile, a session token, ignoring configured endpoints).
func (k *LocalKMS) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_KMS=" + k.Endpoint,
		"AWS_REGION=" + k.Region,
		"AWS_ACCESS_KEY_ID=AKIDLOCALKMS",
		"AWS_SECRET_ACCESS_KEY=local-kms-dummy-secret",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_DEFAULT_PROFILE=",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=",
	}
}

// Setenv sets Env for the rest of the test with t.Setenv, which restores
// the previous values afterwards. Like t.Setenv, it cannot be used in
// parallel tests.
func (k *LocalKMS) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range k.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
}

// Client returns an admin client for this server with anonymous
// credentials (local-kms checks none) and no retries.
func (k *LocalKMS) Client() *kms.Client { return k.client }

// CreateKey creates a symmetric encryption key and returns its ARN. It
// fails the test on any error.
func (k *LocalKMS) CreateKey(t testing.TB) string {
	t.Helper()
	out, err := k.client.CreateKey(adminCtx(t), &kms.CreateKeyInput{
		Description: aws.String(fmt.Sprintf("sealgate test %s", t.Name())),
	})
	if err != nil {
		t.Fatalf("servers: local-kms CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// DisableKey disables the key arn, as a customer revoking it would. It
// fails the test on any error.
func (k *LocalKMS) DisableKey(t testing.TB, arn string) {
	t.Helper()
	if _, err := k.client.DisableKey(adminCtx(t), &kms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatalf("servers: local-kms DisableKey %s: %v", arn, err)
	}
}

// EnableKey enables the key arn again. It fails the test on any error.
func (k *LocalKMS) EnableKey(t testing.TB, arn string) {
	t.Helper()
	if _, err := k.client.EnableKey(adminCtx(t), &kms.EnableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatalf("servers: local-kms EnableKey %s: %v", arn, err)
	}
}

// ScheduleKeyDeletion schedules the key arn for deletion in 7 days, the
// shortest window KMS allows. It fails the test on any error.
func (k *LocalKMS) ScheduleKeyDeletion(t testing.TB, arn string) {
	t.Helper()
	_, err := k.client.ScheduleKeyDeletion(adminCtx(t), &kms.ScheduleKeyDeletionInput{
		KeyId:               aws.String(arn),
		PendingWindowInDays: aws.Int32(7),
	})
	if err != nil {
		t.Fatalf("servers: local-kms ScheduleKeyDeletion %s: %v", arn, err)
	}
}

// CancelKeyDeletion cancels the scheduled deletion of the key arn. Real
// KMS leaves the key disabled afterwards (local-kms enables it), so call
// EnableKey too. It fails the test on any error.
func (k *LocalKMS) CancelKeyDeletion(t testing.TB, arn string) {
	t.Helper()
	if _, err := k.client.CancelKeyDeletion(adminCtx(t), &kms.CancelKeyDeletionInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatalf("servers: local-kms CancelKeyDeletion %s: %v", arn, err)
	}
}

// CreateAlias points the alias "alias/NAME" at the key arn and returns the
// alias ARN. It fails the test on any error.
func (k *LocalKMS) CreateAlias(t testing.TB, name, arn string) string {
	t.Helper()
	alias := "alias/" + name
	_, err := k.client.CreateAlias(adminCtx(t), &kms.CreateAliasInput{
		AliasName:   aws.String(alias),
		TargetKeyId: aws.String(arn),
	})
	if err != nil {
		t.Fatalf("servers: local-kms CreateAlias %s: %v", alias, err)
	}
	return fmt.Sprintf("arn:aws:kms:%s:%s:%s", k.Region, k.AccountID, alias)
}

// UpdateAlias points the alias "alias/NAME" at the key arn. It fails the
// test on any error.
func (k *LocalKMS) UpdateAlias(t testing.TB, name, arn string) {
	t.Helper()
	_, err := k.client.UpdateAlias(adminCtx(t), &kms.UpdateAliasInput{AliasName: aws.String("alias/" + name), TargetKeyId: aws.String(arn)})
	if err != nil {
		t.Fatalf("servers: local-kms UpdateAlias %s: %v", name, err)
	}
}

// adminCtx bounds one admin call.
func adminCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// noRetry makes a call fail at its first error, for readiness polling.
func noRetry(o *kms.Options) { o.RetryMaxAttempts = 1 }
