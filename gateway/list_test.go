package gateway_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func TestListPagesAcrossRegionsInOrder(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	// Artifacts staged in several regions and kept in two storage regions.
	var want []string
	zones := []string{"us-west", "de-fra", "jp-tyo", "us-east"}
	for i := 0; i < 11; i++ {
		if i == 5 {
			_, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
				Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", StorageRegion: "de"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"storage_region"}},
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		h := callHeader(zones[i%len(zones)])
		if i%3 == 0 {
			h.Type = sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL
			h.EngagementId = "eng-vm"
		}
		a := mustUpload(t, env, ctx, h, []byte{byte(i)})
		want = append(want, a.GetName())
		time.Sleep(2 * time.Millisecond) // distinct creation milliseconds
	}
	var got []string
	tok := ""
	pages := 0
	for {
		resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(resp.GetArtifacts()) > 3 {
			t.Fatalf("page of %d, want at most 3", len(resp.GetArtifacts()))
		}
		for _, a := range resp.GetArtifacts() {
			got = append(got, a.GetName())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d artifacts, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listing[%d] = %s, want %s (oldest first, each once)", i, got[i], want[i])
		}
	}

	count := func(req *sealgatev1.ListArtifactsRequest) int {
		req.Parent = "accounts/demo"
		resp, err := env.Artifacts.ListArtifacts(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetArtifacts())
	}
	if n := count(&sealgatev1.ListArtifactsRequest{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL}); n != 4 {
		t.Errorf("type filter: got %d, want 4 voicemails", n)
	}
	if n := count(&sealgatev1.ListArtifactsRequest{EngagementId: "eng-vm"}); n != 4 {
		t.Errorf("engagement filter: got %d, want 4", n)
	}
	third, _ := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: want[3]})
	if n := count(&sealgatev1.ListArtifactsRequest{CreateTimeStart: third.GetCreateTime()}); n != 8 {
		t.Errorf("create_time_start filter: got %d, want 8", n)
	}
	if n := count(&sealgatev1.ListArtifactsRequest{CreateTimeEnd: third.GetCreateTime()}); n != 3 {
		t.Errorf("create_time_end filter: got %d, want 3", n)
	}
	if n := count(&sealgatev1.ListArtifactsRequest{CreateTimeEnd: timestamppb.New(time.Unix(0, 0))}); n != 0 {
		t.Errorf("create_time_end in 1970: got %d, want 0", n)
	}

	_, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", PageToken: "garbage!"})
	wantStatus(t, "bad page token", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = env.Artifacts.ListArtifacts(env.Ctx(t, "acme"), &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo"})
	wantStatus(t, "another account's list", err, codes.NotFound, "ACCOUNT_NOT_FOUND")
	resp, err := env.Artifacts.ListArtifacts(env.Ctx(t, "acme"), &sealgatev1.ListArtifactsRequest{Parent: "accounts/acme"})
	if err != nil || len(resp.GetArtifacts()) != 0 {
		t.Errorf("list of an empty account: got %d artifacts, %v; want none", len(resp.GetArtifacts()), err)
	}
}

func TestListEndsOnExactPagesAndEmptyRanges(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx, cancel := context.WithTimeout(env.Ctx(t, "demo"), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		mustUpload(t, env, ctx, callHeader("us-west"), []byte{byte(i)})
	}
	resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", PageSize: 3})
	if err != nil || len(resp.GetArtifacts()) != 3 {
		t.Fatalf("first page: %v, %v", resp, err)
	}
	if resp.GetNextPageToken() != "" {
		next, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", PageSize: 3, PageToken: resp.GetNextPageToken()})
		if err != nil || len(next.GetArtifacts()) != 0 || next.GetNextPageToken() != "" {
			t.Fatalf("page after the last: %v, %v; want empty and final", next, err)
		}
	}
	future := timestamppb.New(time.Now().Add(24 * time.Hour))
	empty, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", CreateTimeStart: future})
	if err != nil || len(empty.GetArtifacts()) != 0 || empty.GetNextPageToken() != "" {
		t.Fatalf("list from tomorrow: %v, %v; want empty and final", empty, err)
	}
}

func TestListSkipsADamagedObject(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	a := mustUpload(t, env, ctx, callHeader("us-west"), []byte("one"))
	b := mustUpload(t, env, ctx, callHeader("us-west"), []byte("two"))
	os.WriteFile(objectPath(env.DataDir, a), []byte("not a sealgate object"), 0o600)
	resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo"})
	if err != nil || len(resp.GetArtifacts()) != 1 || resp.GetArtifacts()[0].GetName() != b.GetName() {
		t.Fatalf("list with one damaged object: %v, %v; want the intact one", resp, err)
	}
}

// Keys that are not artifacts (the mover's .keep marker in a staging
// folder) must neither stall a listing nor let it skip artifacts: a page
// of them moves the cursor on, and a source whose listed keys were mostly
// such keys bounds what the other sources may contribute to a batch.
func TestListGoesPastKeysThatAreNotArtifacts(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx, cancel := context.WithTimeout(env.Ctx(t, "demo"), 10*time.Second)
	defer cancel()
	staging := filepath.Join(env.DataDir, "regions", "us", "staging", "demo")
	if err := os.MkdirAll(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	// What the mover's keepDir leaves once it has moved an account's first
	// artifact; after every artifact is purged it is all there is.
	if err := os.WriteFile(filepath.Join(staging, ".keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int32{1, 2} {
		resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", PageSize: size})
		if err != nil || len(resp.GetArtifacts()) != 0 || resp.GetNextPageToken() != "" {
			t.Fatalf("page_size %d over only a .keep marker: %v, %v; want an empty, final page", size, resp, err)
		}
	}

	// Staging holds .keep, a1 and a2; storage holds a3 (moved by hand, as
	// the mover would). Listed two keys at a time, staging yields only a1
	// while storage yields a3: a2 must still come between them.
	var want []string
	for i := range 3 {
		a := mustUpload(t, env, ctx, callHeader("us-west"), []byte{byte(i)})
		want = append(want, a.GetName())
		time.Sleep(2 * time.Millisecond)
	}
	id := filepath.Base(want[2])
	stored := filepath.Join(env.DataDir, "regions", "us", "artifacts", "demo")
	if err := os.MkdirAll(stored, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(staging, id), filepath.Join(stored, id)); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int32{1, 2, 3} {
		var got []string
		tok := ""
		for pages := 0; ; pages++ {
			resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", PageSize: size, PageToken: tok})
			if err != nil {
				t.Fatalf("page_size %d, page %d: %v", size, pages, err)
			}
			for _, a := range resp.GetArtifacts() {
				got = append(got, a.GetName())
			}
			if tok = resp.GetNextPageToken(); tok == "" || pages > 10 {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("page_size %d listed %v, want %v", size, got, want)
		}
	}
}
