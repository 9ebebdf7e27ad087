package gateway_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// crossAccountCase is one RPC called by another account's principal (with
// every role) on demo's resources.
type crossAccountCase struct {
	// call makes the call; name is demo's artifact.
	call func(env *gatewaytest.Env, ctx context.Context, name string) error
	// reason is the ErrorInfo reason of the NOT_FOUND answer; empty when the
	// RPC names no account (the account comes from the token).
	reason string
}

// crossAccountCases lists every RPC of the public API. A new RPC must join
// this table: TestEveryRPCIsCheckedAcrossAccounts fails until it does.
var crossAccountCases = map[string]crossAccountCase{
	"sealgate.v1.ArtifactService.UploadArtifact": {
		// Uploads always go to the token's own account; nothing to steal.
		call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
			_, err := env.Upload(ctx, callHeader("us-west"), strings.NewReader("x"), 1)
			return err
		},
	},
	"sealgate.v1.ArtifactService.GetArtifact": {reason: "ARTIFACT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, name string) error {
		_, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: name})
		return err
	}},
	"sealgate.v1.ArtifactService.ReadArtifact": {reason: "ARTIFACT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, name string) error {
		_, err := env.Read(ctx, name, io.Discard)
		return err
	}},
	"sealgate.v1.ArtifactService.ListArtifacts": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo"})
		return err
	}},
	"sealgate.v1.ArtifactService.DeleteArtifact": {reason: "ARTIFACT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, name string) error {
		_, err := env.Artifacts.DeleteArtifact(ctx, &sealgatev1.DeleteArtifactRequest{Name: name})
		return err
	}},
	"sealgate.v1.ArtifactService.UndeleteArtifact": {reason: "ARTIFACT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, name string) error {
		_, err := env.Artifacts.UndeleteArtifact(ctx, &sealgatev1.UndeleteArtifactRequest{Name: name})
		return err
	}},
	"sealgate.v1.ArtifactService.SetLegalHold": {reason: "ARTIFACT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, name string) error {
		_, err := env.Artifacts.SetLegalHold(ctx, &sealgatev1.SetLegalHoldRequest{Target: name})
		return err
	}},
	"sealgate.v1.ArtifactService.ReleaseLegalHold": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Artifacts.ReleaseLegalHold(ctx, &sealgatev1.ReleaseLegalHoldRequest{Target: "accounts/demo/engagements/e1"})
		return err
	}},
	"sealgate.v1.ArtifactService.ListLegalHolds": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Artifacts.ListLegalHolds(ctx, &sealgatev1.ListLegalHoldsRequest{Parent: "accounts/demo"})
		return err
	}},
	"sealgate.v1.AccountService.GetAccountSettings": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Accounts.GetAccountSettings(ctx, &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
		return err
	}},
	"sealgate.v1.AccountService.UpdateAccountSettings": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
			Settings: &sealgatev1.AccountSettings{Name: "accounts/demo/settings", HomeRegion: "de", StorageRegion: "de",
				KeyPolicy: &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER, CustomerKeyUri: "local://globex"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"storage_region", "key_policy"}},
		})
		return err
	}},
	"sealgate.v1.AccountService.TestBlockingRule": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Accounts.TestBlockingRule(ctx, &sealgatev1.TestBlockingRuleRequest{Name: "accounts/demo/settings",
			Rule: &sealgatev1.BlockingRule{Id: "probe", Pattern: "x"}, Sample: "x"})
		return err
	}},
	"sealgate.v1.KeyService.CheckKeyAccess": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		_, err := env.Keys.CheckKeyAccess(ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
		return err
	}},
	"sealgate.v1.KeyService.RewrapArtifacts": {reason: "ACCOUNT_NOT_FOUND", call: func(env *gatewaytest.Env, ctx context.Context, _ string) error {
		s, err := env.Keys.RewrapArtifacts(ctx, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/demo",
			KeyPolicy: &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER, CustomerKeyUri: "local://globex"}})
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}},
}

func TestEveryRPCIsCheckedAcrossAccounts(t *testing.T) {
	n := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("sealgate.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				m := string(svc.Methods().Get(j).FullName())
				n++
				if _, ok := crossAccountCases[m]; !ok {
					t.Errorf("RPC %s is not in crossAccountCases: add how another account calls it", m)
				}
			}
		}
		return true
	})
	if n != len(crossAccountCases) {
		t.Errorf("crossAccountCases has %d entries for %d RPCs: remove the ones that are gone", len(crossAccountCases), n)
	}
}

func TestNoRPCReachesAnotherAccount(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	createAccount(t, env, "globex", "us")
	demo := env.Ctx(t, "demo")
	data := randomBytes(100<<10, 11)
	a := mustUpload(t, env, demo, callHeader("us-west"), data)
	objPath := objectPath(env.DataDir, a)
	if !eventually(func() bool { _, err := os.Stat(objPath); return err == nil }) {
		t.Fatalf("object of %s not found at %s", a.GetName(), objPath)
	}
	before, err := env.Runtime.Settings.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	object := readFile(t, objPath)
	globex := env.Ctx(t, "globex") // every role, of another account
	for method, c := range crossAccountCases {
		t.Run(method[strings.LastIndex(method, ".")+1:], func(t *testing.T) {
			err := c.call(env, globex, a.GetName())
			if c.reason == "" {
				return
			}
			wantStatus(t, method+" on demo's resources by globex", err, codes.NotFound, c.reason)
			if _, ok := findEvent(auditEvents(t, env), func(e audit.Event) bool {
				return e.Kind == audit.KindAccessDenied && e.Detail == "OTHER_ACCOUNT" && e.Account == "globex" &&
					e.Method == methodPath(method)
			}); !ok {
				t.Errorf("no OTHER_ACCOUNT audit event for %s", method)
			}
		})
	}
	after, err := env.Runtime.Settings.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(before, after) {
		t.Fatalf("demo's settings changed through another account:\nbefore %v\nafter  %v", before, after)
	}
	if !bytes.Equal(readFile(t, objPath), object) {
		t.Fatal("demo's artifact object changed through another account")
	}
	if got := mustRead(t, env, demo, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("demo's artifact no longer reads back")
	}
}

// methodPath turns "sealgate.v1.KeyService.CheckKeyAccess" into the gRPC
// method "/sealgate.v1.KeyService/CheckKeyAccess".
func methodPath(full string) string {
	i := strings.LastIndex(full, ".")
	return "/" + full[:i] + "/" + full[i+1:]
}
