package gateway_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// readPartial reads name and returns what arrived before the error.
func readPartial(env *gatewaytest.Env, ctx context.Context, name string) ([]byte, error) {
	var buf bytes.Buffer
	_, err := env.Read(ctx, name, &buf)
	return buf.Bytes(), err
}

func TestTamperedObjectsFailWithDataLoss(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	seg := keys.DefaultSegmentSize
	data := randomBytes(3*seg+1000, 7)
	a := mustUpload(t, env, ctx, callHeader("us-west"), data)
	path := objectPath(env.DataDir, a)
	orig := readFile(t, path)
	h, err := keys.ReadHeader(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	body := h.Len()
	firstPT := seg - 40 - 16
	cases := []struct {
		name     string
		obj      []byte
		released int // plaintext bytes that may reach the client
	}{
		{"flipped header bit", flip(orig, 20), 0},
		{"flipped metadata bit", flip(orig, body-100), 0},
		{"flipped bit in segment 1", flip(orig, body+100), 0},
		{"flipped bit in segment 3", flip(orig, body+2*seg+5), firstPT + (seg - 16)},
		{"truncated at a segment boundary", orig[:body+2*seg], firstPT},
		{"truncated inside a segment", orig[:body+2*seg+77], firstPT + (seg - 16)},
		{"segments 2 and 3 swapped", cat(orig[:body+seg], orig[body+2*seg:body+3*seg], orig[body+seg:body+2*seg], orig[body+3*seg:]), firstPT},
		{"segment 2 duplicated", cat(orig[:body+2*seg], orig[body+seg:]), firstPT + (seg - 16)},
	}
	for _, c := range cases {
		if err := os.WriteFile(path, c.obj, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readPartial(env, ctx, a.GetName())
		wantStatus(t, c.name, err, codes.DataLoss, "INTEGRITY_CHECK_FAILED")
		if len(got) > c.released || !bytes.HasPrefix(data, got) {
			t.Errorf("%s: %d bytes reached the client, want at most the %d verified bytes", c.name, len(got), c.released)
		}
	}
	os.WriteFile(path, orig, 0o600)
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("restored object does not read back")
	}
}

func TestObjectSwappedBetweenArtifactsOrAccounts(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	createAccount(t, env, "acme", "us")
	actx := env.Ctx(t, "acme")
	a := mustUpload(t, env, ctx, callHeader("us-west"), []byte("artifact a of demo"))
	b := mustUpload(t, env, ctx, callHeader("us-west"), []byte("artifact b of demo"))
	c := mustUpload(t, env, actx, callHeader("us-west"), []byte("artifact c of acme"))
	pa, pb, pc := objectPath(env.DataDir, a), objectPath(env.DataDir, b), objectPath(env.DataDir, c)
	oa, ob := readFile(t, pa), readFile(t, pb)

	os.WriteFile(pb, oa, 0o600) // a's object under b's name
	_, err := readPartial(env, ctx, b.GetName())
	wantStatus(t, "object of another artifact", err, codes.DataLoss, "INTEGRITY_CHECK_FAILED")
	os.WriteFile(pb, ob, 0o600)

	os.WriteFile(pc, oa, 0o600) // demo's object under acme's name
	_, err = readPartial(env, actx, c.GetName())
	wantStatus(t, "object of another account", err, codes.DataLoss, "INTEGRITY_CHECK_FAILED")

	// The header of a with the body of b: the key commitment or body fails.
	ha, _ := keys.ReadHeader(bytes.NewReader(oa))
	hb, _ := keys.ReadHeader(bytes.NewReader(ob))
	os.WriteFile(pa, cat(oa[:ha.Len()], ob[hb.Len():]), 0o600)
	_, err = readPartial(env, ctx, a.GetName())
	wantStatus(t, "header of a, body of b", err, codes.DataLoss, "INTEGRITY_CHECK_FAILED")
}

func TestAuthErrors(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	a := mustUpload(t, env, ctx, callHeader("us-west"), []byte("secret"))
	get := func(ctx context.Context, name string) error {
		_, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: name})
		return err
	}
	wantStatus(t, "no token", get(context.Background(), a.GetName()), codes.Unauthenticated, "TOKEN_MISSING")
	wantStatus(t, "garbage token", get(gatewaytest.WithToken(context.Background(), "not.a.jwt"), a.GetName()), codes.Unauthenticated, "TOKEN_INVALID")
	wantStatus(t, "uploader reads", get(env.Ctx(t, "demo", auth.RoleUploader), a.GetName()), codes.PermissionDenied, "ROLE_REQUIRED")
	_, err := env.Upload(env.Ctx(t, "demo", auth.RoleReader), callHeader("us-west"), bytes.NewReader([]byte("x")), 10)
	wantStatus(t, "reader uploads", err, codes.PermissionDenied, "ROLE_REQUIRED")
	_, err = readPartial(env, env.Ctx(t, "demo", auth.RoleAuditor), a.GetName())
	wantStatus(t, "auditor reads content", err, codes.PermissionDenied, "ROLE_REQUIRED")

	// Another account's artifact answers exactly like a missing one.
	other := env.Ctx(t, "acme")
	missing := a.GetName()[:len(a.GetName())-10] + "00000-usus"
	theirs := wantStatus(t, "another account's artifact", get(other, a.GetName()), codes.NotFound, "ARTIFACT_NOT_FOUND")
	ours := wantStatus(t, "missing artifact", get(ctx, missing), codes.NotFound, "ARTIFACT_NOT_FOUND")
	if len(theirs.Details()) != len(ours.Details()) {
		t.Errorf("details differ: %v vs %v", theirs.Details(), ours.Details())
	}
	_, err = readPartial(env, other, a.GetName())
	wantStatus(t, "read of another account's artifact", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	wantStatus(t, "malformed name", get(ctx, "accounts/demo/things/x"), codes.InvalidArgument, "INVALID_ARGUMENT")
}

func TestPanicAnswersInternalWithoutText(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	logs := &gatewaytest.SyncBuffer{}
	srv := gateway.NewServer(env.Runtime.Gateway, env.Runtime.Verifier, env.Runtime.Config.NewLogger(logs))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Panic",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Boom", Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			dec(in)
			h := func(context.Context, any) (any, error) { panic("secret panic detail") }
			return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Panic/Boom"}, h)
		}}},
	}, nil)
	lis := listen(t)
	go srv.Serve(lis)
	defer srv.Stop()
	conn := dial(t, lis.Addr().String())
	err := conn.Invoke(env.Ctx(t, "demo"), "/test.Panic/Boom", &emptypb.Empty{}, &emptypb.Empty{})
	st := wantStatus(t, "panicking handler", err, codes.Internal, "")
	if bytes.Contains([]byte(st.Message()), []byte("secret")) {
		t.Fatalf("status message %q leaks the panic", st.Message())
	}
	if !bytes.Contains([]byte(logs.String()), []byte("secret panic detail")) {
		t.Fatalf("panic not logged for operators")
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x10
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReplacedProviderKeyIsAKeyErrorNotTampering(t *testing.T) {
	first := gatewaytest.Start(t, nil)
	ctx := first.Ctx(t, "demo")
	a := mustUpload(t, first, ctx, callHeader("us-west"), []byte("under the first provider key"))
	// The old bug: a second start that does not find the keyset makes a new
	// one. Reads of what the first key protects must then say so.
	if err := os.Remove(filepath.Join(first.DataDir, "keys", "provider.keyset.json")); err != nil {
		t.Fatal(err)
	}
	second := gatewaytest.Start(t, func(c *config.Config) { c.DataDir = first.DataDir })
	_, err := second.Read(second.Ctx(t, "demo"), a.GetName(), io.Discard)
	wantStatus(t, "read under a replaced provider key", err, codes.FailedPrecondition, "WRONG_KEY")
}
