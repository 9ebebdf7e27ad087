package integration

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// BenchmarkKMSCallsPer10kUploads uploads 10,000 small artifacts for one
// account under a customer key in local-kms and reports how many KMS calls
// they cost, against the bound: one per revocation bound elapsed, plus one.
//
//	go test ./integration -run '^$' -bench KMSCalls -benchtime 1x
func BenchmarkKMSCallsPer10kUploads(b *testing.B) {
	kms := servers.StartLocalKMS(b)
	kms.Setenv(b)
	const revocationBound = 30 * time.Second
	for i := 0; i < b.N; i++ {
		env := gatewaytest.Start(b, func(c *config.Config) {
			c.Keys.RevocationBound = revocationBound
			c.Keys.AWSKMS = config.AWSKMS{Regions: []string{kms.Region}, Accounts: []config.AWSAccount{{ID: kms.AccountID, Accounts: []string{"demo"}}}}
			c.LogLevel = "warn"
			c.Audit = "off"
		})
		ctx := env.Ctx(b, "demo")
		arn := kms.CreateKey(b)
		if _, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
			Settings: &sealgatev1.AccountSettings{Name: "accounts/demo/settings", HomeRegion: "us",
				KeyPolicy: &sealgatev1.KeyPolicy{Mode: customer, CustomerKeyUri: "aws-kms://" + arn}},
		}); err != nil {
			b.Fatal(err)
		}
		calls := func() float64 {
			return testutil.ToFloat64(env.Runtime.Metrics.KeyCalls.WithLabelValues("wrap", "aws-kms", "ok")) +
				testutil.ToFloat64(env.Runtime.Metrics.KeyCalls.WithLabelValues("unwrap", "aws-kms", "ok"))
		}
		before := calls()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		payload := bytes.Repeat([]byte("x"), 4096)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= 10000 {
					if _, err := env.Upload(ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, SipZone: "us-west"},
						bytes.NewReader(payload), 4096); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		got := calls() - before
		limit := float64(int(elapsed/revocationBound)) + 1
		b.ReportMetric(got, "kms-calls/10k-uploads")
		b.ReportMetric(limit, "allowed-calls")
		b.ReportMetric(elapsed.Seconds(), "seconds/10k-uploads")
		if got > limit {
			b.Errorf("%v KMS calls for 10,000 uploads in %v, want at most %v (one per %v elapsed, plus one)", got, elapsed, limit, revocationBound)
		}
	}
}
