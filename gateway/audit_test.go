package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/gateway/audit"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func TestAuditRecordsKeyUseReadsDenialsAndSettings(t *testing.T) {
	env, kms := startWithKMS(t)
	ctx := env.Ctx(t, "demo")
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://acme"); err != nil {
		t.Fatal(err)
	}
	const marker = "AUDIT-MARKER-CONTENT"
	a := mustUpload(t, env, ctx, callHeader("us-west"), []byte(strings.Repeat(marker, 1000)))
	mustRead(t, env, ctx, a.GetName())
	kms.set("acme", revoked)
	kms.clock.advance(testBound)
	readErr(env, ctx, a.GetName())

	raw, err := os.ReadFile(filepath.Join(env.DataDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Fatal("audit log holds content")
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		seen[e.Kind+"/"+e.Outcome]++
		if e.Kind == audit.KindRead && (e.Artifact != a.GetName() || e.Actor != "test" || len(e.KeyURIs) != 1) {
			t.Errorf("read event %+v, want artifact, actor and key URI", e)
		}
	}
	for _, want := range []string{
		"settings.update/ok", "key.check/ok", "key.wrap/ok", "artifact.upload/ok", "artifact.read/ok",
		"key.unwrap/revoked", "artifact.read_denied/revoked",
	} {
		if seen[want] == 0 {
			t.Errorf("no %s event; got %v", want, seen)
		}
	}
}
