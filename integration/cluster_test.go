package integration

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// clusterStore is a config store on a distributed MinIO, through node i.
func clusterStore(c *servers.MinIOCluster, i int, bucket string) config.Store {
	return config.Store{Endpoint: c.Endpoints[i], Bucket: bucket, AccessKeyEnv: "MINIO_CL_ACCESS_KEY", SecretKeyEnv: "MINIO_CL_SECRET_KEY"}
}

func startCluster(t *testing.T) *servers.MinIOCluster {
	t.Helper()
	c := servers.StartMinIOCluster(t, 4)
	c.MakeBucket(t, "sealgate-us")
	c.MakeBucket(t, "sealgate-control")
	t.Setenv("MINIO_CL_ACCESS_KEY", c.AccessKey)
	t.Setenv("MINIO_CL_SECRET_KEY", c.SecretKey)
	return c
}

// TestDistributedRegionSurvivesANodeLoss runs the region on a 4-process
// distributed MinIO (erasure-coded over 8 drives) and SIGKILLs one process
// that the gateway does not talk to: uploads and reads go on; once the
// process is back, every artifact still reads byte-exact.
func TestDistributedRegionSurvivesANodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-process MinIO")
	}
	c := startCluster(t)
	env := gatewaytest.Start(t, func(cfg *config.Config) {
		cfg.Regions = map[string]config.Store{"us": clusterStore(c, 0, "sealgate-us")}
		cfg.SIPZones = map[string]string{"us-west": "us"}
		cfg.Control = clusterStore(c, 1, "sealgate-control")
	})
	ctx := env.Ctx(t, "demo")
	arts := env.Artifacts
	stored := map[string][]byte{}
	upload := func(i int) {
		t.Helper()
		data := bytes.Repeat([]byte(fmt.Sprintf("artifact %d ", i)), 20000+i*1000)
		a, err := uploadVia(ctx, arts, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"}, data)
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		stored[a.GetName()] = data
	}
	readAll := func(when string) {
		t.Helper()
		for name, want := range stored {
			got, err := readVia(ctx, arts, name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %s read %d bytes, %v", when, name, len(got), err)
			}
		}
	}
	for i := range 10 {
		upload(i)
	}
	if _, err := env.Runtime.Mover.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Kill(3)
	for i := 10; i < 20; i++ {
		upload(i)
	}
	if _, err := env.Runtime.Mover.Pass(context.Background()); err != nil {
		t.Fatalf("mover with a node down: %v", err)
	}
	readAll("with a node down")
	c.Restart(t, 3)
	readAll("after the node came back")
	if len(stored) != 20 {
		t.Fatalf("%d artifacts, want 20", len(stored))
	}
}
