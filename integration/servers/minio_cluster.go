package servers

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOCluster is a distributed MinIO: several server processes on
// loopback, two drives each, erasure-coded across all of them, one S3
// endpoint per process. It stands for a region that keeps serving when a
// node dies.
type MinIOCluster struct {
	// Endpoints are the nodes' "127.0.0.1:PORT", any of which serves the
	// whole cluster.
	Endpoints []string
	AccessKey string
	SecretKey string
	Region    string

	nodes  []*process
	client *minio.Client
}

// clusterStartTimeout bounds how long the cluster has to form.
const clusterStartTimeout = 90 * time.Second

// StartMinIOCluster runs n MinIO processes as one distributed deployment
// (n*2 drives in t.TempDir()) and waits until its cluster health answers
// 200. MinIO sees a container here and would refuse loopback endpoints and
// drives on the root disk: each process gets _MINIO_SERVER_LOCAL (which
// endpoint is itself) and MINIO_CI_CD.
func StartMinIOCluster(t testing.TB, n int) *MinIOCluster {
	t.Helper()
	bin := Tool(t, "minio")
	dir := t.TempDir()
	c := &MinIOCluster{AccessKey: "sealgate-" + randomHex(t, 6), SecretKey: randomHex(t, 20), Region: MinIORegion}
	ports := map[int]bool{}
	var all []string
	for i := 0; i < n; i++ {
		p := FreePort(t)
		for ports[p] {
			p = FreePort(t)
		}
		ports[p] = true
		ep := hostPort(p)
		c.Endpoints = append(c.Endpoints, ep)
		for d := 1; d <= 2; d++ {
			all = append(all, fmt.Sprintf("http://%s%s", ep, filepath.Join(dir, fmt.Sprintf("node%d", i+1), fmt.Sprintf("d%d", d))))
		}
	}
	for i, ep := range c.Endpoints {
		console := FreePort(t)
		for ports[console] {
			console = FreePort(t)
		}
		ports[console] = true
		env := []string{
			"MINIO_ROOT_USER=" + c.AccessKey, "MINIO_ROOT_PASSWORD=" + c.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1", "_MINIO_SERVER_LOCAL=" + ep,
			"MINIO_API_REQUESTS_DEADLINE=10s",
		}
		args := append([]string{"server", "--address", ep, "--console-address", hostPort(console)}, all...)
		c.nodes = append(c.nodes, newProcess(fmt.Sprintf("minio-node%d", i+1), bin, args, env, dir))
	}
	t.Cleanup(c.Stop)
	for _, p := range c.nodes {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	client, err := minio.New(c.Endpoints[0], &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: c.Region, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.client = client
	c.waitHealthy(t, c.Endpoints[0])
	return c
}

// waitHealthy waits until the cluster health of ep answers 200.
func (c *MinIOCluster) waitHealthy(t testing.TB, ep string) {
	t.Helper()
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(clusterStartTimeout)
	for {
		resp, err := probe.Get("http://" + ep + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			var tails []string
			for _, p := range c.nodes {
				tails = append(tails, p.name+":\n"+p.tail(15))
			}
			t.Fatalf("servers: the MinIO cluster did not form within %v:\n%s", clusterStartTimeout, strings.Join(tails, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Kill SIGKILLs node i (0-based).
func (c *MinIOCluster) Kill(i int) { c.nodes[i].stop() }

// Restart starts node i again with the same drives and waits until the
// cluster is healthy.
func (c *MinIOCluster) Restart(t testing.TB, i int) {
	t.Helper()
	c.nodes[i].stop()
	if err := c.nodes[i].start(); err != nil {
		t.Fatal(err)
	}
	c.waitHealthy(t, c.Endpoints[i])
}

// Stop kills every node.
func (c *MinIOCluster) Stop() {
	for _, p := range c.nodes {
		p.stop()
	}
}

// MakeBucket creates the bucket name.
func (c *MinIOCluster) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: c.Region}); err != nil {
		t.Fatalf("servers: minio cluster MakeBucket %s: %v", name, err)
	}
}

// Client returns a root client of the first node.
func (c *MinIOCluster) Client() *minio.Client { return c.client }
