package layout

import (
	"testing"
	"time"
)

func TestArtifactIDsSortByTimeAndCarryRegions(t *testing.T) {
	t0 := time.UnixMilli(1_800_000_000_000)
	prev := ""
	for i := 0; i < 100; i++ {
		id, err := NewArtifactID(t0.Add(time.Duration(i)*time.Millisecond), "us", "de")
		if err != nil {
			t.Fatal(err)
		}
		if id <= prev {
			t.Fatalf("id %s sorts before the earlier %s", id, prev)
		}
		if got, ok := IDTime(id); !ok || !got.Equal(t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("IDTime(%s) = %v, want %v", id, got, t0.Add(time.Duration(i)*time.Millisecond))
		}
		if IDFloor(t0.Add(time.Duration(i)*time.Millisecond)) >= id || (prev != "" && IDFloor(t0.Add(time.Duration(i)*time.Millisecond)) <= prev) {
			t.Fatalf("IDFloor does not separate %s from %s", prev, id)
		}
		prev = id
		ref, ok := ParseArtifactName(ArtifactName("acme", id))
		if !ok || ref.Staging != "us" || ref.Storage != "de" || ref.Account != "acme" {
			t.Fatalf("ParseArtifactName round trip: %+v, %v", ref, ok)
		}
		if k, ok := ParseStagingKey(ref.StagingKey()); !ok || k != ref {
			t.Fatalf("ParseStagingKey(%s) = %+v, %v; want %+v", ref.StagingKey(), k, ok, ref)
		}
	}
	for _, bad := range []string{"", "accounts/acme/artifacts/x", "accounts/Acme/artifacts/06f3kq0bm1r4c5tkeg6zgq8y4c-usde",
		"accounts/acme/artifacts/06f3kq0bm1r4c5tkeg6zgq8y4c-usd", "accounts/acme/artifacts/06f3kq0bm1r4c5tkeg6zgq8y4c-usde/x"} {
		if _, ok := ParseArtifactName(bad); ok {
			t.Errorf("ParseArtifactName(%q) accepted, want rejected", bad)
		}
	}
}
