package integration

import (
	"bytes"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

const (
	customer = sealgatev1.KeyMode_KEY_MODE_CUSTOMER
	both     = sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER
)

// TestAWSKMSRevocationMatrix runs the revocation cases of AWS KMS against
// local-kms: disable, scheduled deletion, each half of
// CUSTOMER_AND_PROVIDER, and the KMS process killed.
func TestAWSKMSRevocationMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local-kms")
	}
	kms := servers.StartLocalKMS(t)
	kms.Setenv(t)
	reg := config.Keys{AWSKMS: config.AWSKMS{Regions: []string{kms.Region},
		Accounts: []config.AWSAccount{{ID: kms.AccountID, Accounts: []string{"demo"}}}}}

	t.Run("DisableKey", func(t *testing.T) {
		arn := kms.CreateKey(t)
		k := startKeyed(t, "", customer, "aws-kms://"+arn, reg)
		kms.DisableKey(t, arn)
		k.waitRevoked(t, "KMS DisableKey", true)
		kms.EnableKey(t, arn)
		k.mustReadExact(t, "KMS EnableKey")
	})
	t.Run("ScheduleKeyDeletion", func(t *testing.T) {
		arn := kms.CreateKey(t)
		k := startKeyed(t, "", customer, "aws-kms://"+arn, reg)
		kms.ScheduleKeyDeletion(t, arn)
		k.waitRevoked(t, "KMS ScheduleKeyDeletion", true)
		kms.CancelKeyDeletion(t, arn)
		kms.EnableKey(t, arn)
		k.mustReadExact(t, "KMS CancelKeyDeletion")
	})
	t.Run("CustomerAndProvider", func(t *testing.T) {
		custARN, provARN := kms.CreateKey(t), kms.CreateKey(t)
		k := startKeyed(t, "aws-kms://"+provARN, both, "aws-kms://"+custARN, reg)
		for _, half := range []struct{ name, arn string }{{"customer half", custARN}, {"provider half", provARN}} {
			kms.DisableKey(t, half.arn)
			k.waitRevoked(t, "CUSTOMER_AND_PROVIDER, "+half.name+" disabled", true)
			kms.EnableKey(t, half.arn)
			k.mustReadExact(t, "CUSTOMER_AND_PROVIDER, "+half.name+" enabled")
		}
	})
	t.Run("RewrapToAnotherKey", func(t *testing.T) {
		oldARN, newARN := kms.CreateKey(t), kms.CreateKey(t)
		k := startKeyed(t, "", customer, "aws-kms://"+oldARN, reg)
		names := []string{k.name}
		for i := 0; i < 9; i++ {
			a, err := k.Upload(k.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"},
				bytes.NewReader(k.data), 256<<10)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, a.GetName())
		}
		if _, err := k.Accounts.UpdateAccountSettings(k.ctx, &sealgatev1.UpdateAccountSettingsRequest{
			Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", KeyPolicy: &sealgatev1.KeyPolicy{Mode: customer, CustomerKeyUri: "aws-kms://" + newARN}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"key_policy"}},
		}); err != nil {
			t.Fatal(err)
		}
		stream, err := k.Keys.RewrapArtifacts(k.ctx, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/demo"})
		if err != nil {
			t.Fatal(err)
		}
		var last *sealgatev1.RewrapArtifactsResponse
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("rewrap: %v", err)
			}
			last = msg
		}
		if last.GetArtifactsDone() != 10 {
			t.Fatalf("rewrap: %v, want 10 artifacts re-wrapped", last)
		}
		kms.DisableKey(t, oldARN)
		time.Sleep(bound + 200*time.Millisecond)
		for _, name := range names {
			k.name = name
			if err := k.read(); err != nil {
				t.Fatalf("%s after rewrap with the old key disabled: %v", name, err)
			}
		}
	})
	t.Run("AliasRepointed", func(t *testing.T) {
		first, second := kms.CreateKey(t), kms.CreateKey(t)
		alias := kms.CreateAlias(t, "repointed", first)
		k := startKeyed(t, "", customer, "aws-kms://"+alias, reg)
		old, err := k.Artifacts.GetArtifact(k.ctx, &sealgatev1.GetArtifactRequest{Name: k.name})
		if err != nil {
			t.Fatal(err)
		}
		if got := old.GetKeyUris(); len(got) != 1 || got[0] != "aws-kms://"+first {
			t.Fatalf("artifact written through the alias names %v, want the key it pointed to, %s", got, first)
		}
		kms.UpdateAlias(t, "repointed", second)
		time.Sleep(bound + 200*time.Millisecond) // the next intermediate key is wrapped through the alias again
		a, err := k.Upload(k.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"},
			bytes.NewReader(k.data), 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.GetKeyUris(); len(got) != 1 || got[0] != "aws-kms://"+second {
			t.Fatalf("artifact written after re-pointing names %v, want %s", got, second)
		}
		oldName := k.name
		for _, name := range []string{oldName, a.GetName()} {
			k.name = name
			if err := k.read(); err != nil {
				t.Fatalf("read of %s after the alias moved: %v", name, err)
			}
		}
	})
	t.Run("KMSKilled", func(t *testing.T) {
		arn := kms.CreateKey(t)
		k := startKeyed(t, "", customer, "aws-kms://"+arn, reg)
		kms.Stop()
		k.waitUnavailable(t, "local-kms killed")
		kms.Restart(t)
		k.mustReadExact(t, "local-kms restarted")
	})
}

// TestVaultRevocationMatrix runs the Vault cases: policy revoked, token
// revoked, key deleted, min_decryption_version raised, and Vault stopped.
func TestVaultRevocationMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault")
	}
	v := servers.StartVault(t)
	// Each case runs its own gateway with a token that may use only its key.
	keyed := func(t *testing.T, name string) (*keyEnv, string) {
		uri := v.CreateKey(t, name)
		policy, token := v.GrantTransit(t, name)
		t.Setenv("SEALGATE_TEST_VAULT_TOKEN", token)
		reg := config.Keys{Vault: []config.VaultServer{{Address: v.Addr, Accounts: []string{"demo"}, TokenEnv: "SEALGATE_TEST_VAULT_TOKEN"}}}
		return startKeyed(t, "", customer, uri, reg), policy + "\x00" + token
	}
	split := func(s string) (string, string) {
		for i := range s {
			if s[i] == 0 {
				return s[:i], s[i+1:]
			}
		}
		return s, ""
	}
	t.Run("PolicyRevoked", func(t *testing.T) {
		k, pt := keyed(t, "policy")
		policy, _ := split(pt)
		v.EmptyPolicy(t, policy)
		k.waitRevoked(t, "Vault policy revoked", true)
		v.PutPolicy(t, policy, "policy")
		k.mustReadExact(t, "Vault policy restored")
	})
	t.Run("TokenRevoked", func(t *testing.T) {
		k, pt := keyed(t, "token")
		_, token := split(pt)
		v.RevokeToken(t, token)
		k.waitRevoked(t, "Vault token revoked", true)
		// A revoked token cannot come back; a new token needs a new config.
	})
	t.Run("KeyDeleted", func(t *testing.T) {
		k, _ := keyed(t, "deleted")
		v.DeleteKey(t, "deleted")
		k.waitRevoked(t, "Vault key deleted", true)
	})
	t.Run("MinDecryptionVersionRaised", func(t *testing.T) {
		k, _ := keyed(t, "mindec")
		v.RotateAndRaiseMinDecryption(t, "mindec")
		// Encrypting under the new version stays allowed: only reads of
		// older wrapped keys end.
		k.waitRevoked(t, "Vault min_decryption_version raised", false)
		v.SetMinDecryption(t, "mindec", 1)
		k.mustReadExact(t, "Vault min_decryption_version lowered")
	})
	t.Run("DecryptDeniedEncryptAllowed", func(t *testing.T) {
		k, pt := keyed(t, "encrypt-only")
		policy, _ := split(pt)
		v.PutEncryptOnlyPolicy(t, policy, "encrypt-only")
		k.waitRevoked(t, "Vault decrypt denied, encrypt allowed", false)
		// Encrypt still works, so uploads are accepted, but what they store
		// is not readable: a key made by Encrypt never serves reads.
		a, err := k.Upload(k.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"},
			bytes.NewReader(k.data), 256<<10)
		if err != nil {
			t.Fatalf("upload with encrypt allowed: %v", err)
		}
		k.name = a.GetName()
		if code, reason := reasonOf(k.read()); code != codes.PermissionDenied || reason != "KEY_REVOKED" {
			t.Fatalf("read of a fresh upload with decrypt denied: %v %s, want PERMISSION_DENIED KEY_REVOKED at once", code, reason)
		}
		v.PutPolicy(t, policy, "encrypt-only")
		k.mustReadExact(t, "Vault decrypt allowed again")
	})
	t.Run("VaultStopped", func(t *testing.T) {
		k, _ := keyed(t, "stopped")
		v.Stop()
		k.waitUnavailable(t, "Vault stopped")
	})
}
