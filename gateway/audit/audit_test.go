package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestJSONLinesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	s, c, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	s.Record(Event{Kind: KindRead, Account: "acme", Artifact: "accounts/acme/artifacts/x", Outcome: OutcomeOK, Actor: "svc"})
	s.Record(Event{Kind: KindKeyUnwrap, Account: "acme", KeyURIs: []string{"aws-kms://arn"}, Outcome: OutcomeRevoked})
	c.Close()
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode: %v %v, want 0600", fi.Mode().Perm(), err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var got []Event
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not an event: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[1].Outcome != OutcomeRevoked || got[0].Time.IsZero() {
		t.Fatalf("events = %+v, want two with times", got)
	}
}
