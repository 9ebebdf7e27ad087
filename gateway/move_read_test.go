package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/mover"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func TestReadsWorkAtEveryStepOfAMove(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "de"}, "storage_region"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(700<<10, 11)
	a := mustUpload(t, env, ctx, callHeader("jp-tyo"), data)
	steps := map[string]bool{}
	m := env.Runtime.Mover
	m.SetHook(func(step string, ref layout.Ref) error {
		steps[step] = true
		got, err := readPartial(env, ctx, a.GetName())
		if err != nil || !bytes.Equal(got, data) {
			return fmt.Errorf("read at step %s: %d bytes, %v", step, len(got), err)
		}
		art, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
		want := sealgatev1.Artifact_STATE_STAGED
		if step == mover.StepDeleted {
			want = sealgatev1.Artifact_STATE_STORED
		}
		if err != nil || art.GetState() != want {
			return fmt.Errorf("state at step %s: %v, %v; want %v", step, art.GetState(), err, want)
		}
		return nil
	})
	moved, err := m.Pass(context.Background())
	if err != nil || moved != 1 {
		t.Fatalf("Pass = %d, %v; want 1 moved", moved, err)
	}
	for _, s := range []string{mover.StepStart, mover.StepMidCopy, mover.StepCopied, mover.StepVerified, mover.StepDeleted} {
		if !steps[s] {
			t.Errorf("step %s never ran", s)
		}
	}
	resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo"})
	if err != nil || len(resp.GetArtifacts()) != 1 || resp.GetArtifacts()[0].GetState() != sealgatev1.Artifact_STATE_STORED {
		t.Fatalf("list after the move: %v, %v; want the one artifact, STORED", resp, err)
	}
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("read after the move is not byte-exact")
	}
}
