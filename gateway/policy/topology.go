package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sealgate/sealgate/store"
)

// Topology is a deployment's map of regions to buckets and of SIP zones to
// regions. It is immutable once built and safe for concurrent use.
type Topology struct {
	buckets map[string]store.Bucket
	zones   map[string]string
}

// NewTopology returns a topology over copies of buckets (region code to
// bucket) and zones (SIP zone to region code).
//
// NewTopology returns an error when buckets is empty, when a bucket key is
// not a region code of Regions or its bucket is nil, when a zone name is
// empty, or when a zone maps to a region that has no bucket.
func NewTopology(buckets map[string]store.Bucket, zones map[string]string) (*Topology, error) {
	if len(buckets) == 0 {
		return nil, errors.New("policy: topology has no regions")
	}
	for _, r := range slices.Sorted(maps.Keys(buckets)) {
		if !IsRegion(r) {
			return nil, fmt.Errorf("policy: topology names %q, which is not a region code", r)
		}
		if buckets[r] == nil {
			return nil, fmt.Errorf("policy: topology region %q has no bucket", r)
		}
	}
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		r := zones[z]
		switch {
		case z == "":
			return nil, errors.New("policy: topology has a SIP zone with an empty name")
		case !IsRegion(r):
			return nil, fmt.Errorf("policy: SIP zone %q maps to %q, which is not a region code", z, r)
		case buckets[r] == nil:
			return nil, fmt.Errorf("policy: SIP zone %q maps to region %q, which has no bucket", z, r)
		}
	}
	return &Topology{buckets: maps.Clone(buckets), zones: maps.Clone(zones)}, nil
}

// ZoneRegion returns the region whose bucket stages uploads from zone. It
// returns an error wrapping ErrUnknownSIPZone when zone is not configured.
func (t *Topology) ZoneRegion(zone string) (string, error) {
	if t != nil {
		if r, ok := t.zones[zone]; ok {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknownSIPZone, zone)
}

// Bucket returns the bucket of region. It returns an error wrapping
// ErrUnknownRegion when the topology has no such region.
func (t *Topology) Bucket(region string) (store.Bucket, error) {
	if t != nil {
		if b, ok := t.buckets[region]; ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w %q: not configured in this deployment", ErrUnknownRegion, region)
}

// Regions returns the configured region codes in sorted order.
func (t *Topology) Regions() []string {
	if t == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(t.buckets))
}

// HasRegion reports whether the topology has a bucket for region.
func (t *Topology) HasRegion(region string) bool {
	if t == nil {
		return false
	}
	_, ok := t.buckets[region]
	return ok
}

// Zones returns a copy of the topology's map of SIP zones to regions.
func (t *Topology) Zones() map[string]string {
	m := make(map[string]string)
	if t != nil {
		maps.Copy(m, t.zones)
	}
	return m
}
