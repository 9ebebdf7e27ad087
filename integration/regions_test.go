package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/integration/servers"
)

// regionSet is three MinIO processes standing for the us, de and jp regions.
type regionSet struct {
	minio map[string]*servers.MinIO
}

func bucketOf(region string) string { return "sealgate-" + region }

// startRegions starts one MinIO per region and exports their credentials in
// the environment variables a config names.
func startRegions(t *testing.T) *regionSet {
	t.Helper()
	rs := &regionSet{minio: map[string]*servers.MinIO{}}
	for _, r := range []string{"us", "de", "jp"} {
		m := servers.StartMinIO(t)
		rs.minio[r] = m
		t.Setenv("MINIO_"+strings.ToUpper(r)+"_ACCESS_KEY", m.AccessKey)
		t.Setenv("MINIO_"+strings.ToUpper(r)+"_SECRET_KEY", m.SecretKey)
	}
	return rs
}

// apply points a config at the three regions.
func (rs *regionSet) apply(c *config.Config) {
	c.Regions = map[string]config.Store{}
	for r, m := range rs.minio {
		c.Regions[r] = config.Store{
			Endpoint: m.Endpoint, Bucket: bucketOf(r),
			AccessKeyEnv: "MINIO_" + strings.ToUpper(r) + "_ACCESS_KEY",
			SecretKeyEnv: "MINIO_" + strings.ToUpper(r) + "_SECRET_KEY",
		}
	}
	c.SIPZones = map[string]string{"us-west": "us", "us-east": "us", "de-fra": "de", "jp-tyo": "jp"}
}

// yaml writes a config file for the gateway binaries.
func (rs *regionSet) yaml(t *testing.T, dataDir string, extra string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\ndata_dir: %s\nmover_interval: 200ms\nregions:\n", dataDir)
	for _, r := range []string{"us", "de", "jp"} {
		u := strings.ToUpper(r)
		fmt.Fprintf(&b, "  %s: {endpoint: %q, bucket: %s, access_key_env: MINIO_%s_ACCESS_KEY, secret_key_env: MINIO_%s_SECRET_KEY}\n",
			r, rs.minio[r].Endpoint, bucketOf(r), u, u)
	}
	b.WriteString("sip_zones: {us-west: us, us-east: us, de-fra: de, jp-tyo: jp}\ndev: {account: demo}\n")
	b.WriteString(extra)
	p := filepath.Join(t.TempDir(), "sealgate.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keys lists the keys of a region's bucket directly with minio-go.
func (rs *regionSet) keys(t *testing.T, region string) []string {
	t.Helper()
	return rs.keysIn(t, region, bucketOf(region))
}

// keysIn lists the keys of bucket on region's server.
func (rs *regionSet) keysIn(t *testing.T, region, bucket string) []string {
	t.Helper()
	var out []string
	for o := range rs.minio[region].Client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", region, bucket, o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

// objects lists every object of a region's bucket, read directly with
// minio-go, not through the gateway: key to SHA-256.
func (rs *regionSet) objects(t *testing.T, region string) map[string][32]byte {
	t.Helper()
	c := rs.minio[region].Client(t)
	out := map[string][32]byte{}
	ctx := context.Background()
	for o := range c.ListObjects(ctx, bucketOf(region), minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", region, o.Err)
		}
		obj, err := c.GetObject(ctx, bucketOf(region), o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, obj); err != nil {
			t.Fatalf("read %s/%s: %v", region, o.Key, err)
		}
		obj.Close()
		out[o.Key] = [32]byte(h.Sum(nil))
	}
	return out
}

// assertPlacement checks, by listing every bucket directly, that each
// artifact (name -> storage region) sits in exactly its storage region's
// bucket under artifacts/, that nothing is staged, and that no other
// region's bucket holds its key or its bytes.
func (rs *regionSet) assertPlacement(t *testing.T, want map[string]string) {
	t.Helper()
	all := map[string]map[string][32]byte{}
	for r := range rs.minio {
		all[r] = rs.objects(t, r)
		for key := range all[r] {
			if strings.HasPrefix(key, "staging/") && !strings.HasSuffix(key, "/.keep") {
				t.Errorf("region %s still stages %s", r, key)
			}
		}
	}
	for name, region := range want {
		parts := strings.Split(name, "/")
		key := "artifacts/" + parts[1] + "/" + parts[3]
		sum, ok := all[region][key]
		if !ok {
			t.Errorf("%s: not in %s's bucket, want it there", name, region)
			continue
		}
		for r, objs := range all {
			for k, s := range objs {
				if r == region && k == key {
					continue
				}
				if strings.Contains(k, parts[3]) || s == sum {
					t.Errorf("%s: region %s holds %s with its id or its bytes; want it only in %s", name, r, k, region)
				}
			}
		}
	}
}
