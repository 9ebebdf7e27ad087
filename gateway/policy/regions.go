// Package policy holds the residency, retention and settings rules of
// sealgate: which regions exist, which region an artifact of a given type is
// stored in, how long it is kept, and what makes account settings valid.
//
// The package knows nothing about gRPC. It returns typed Go errors (the
// sentinel errors below, *ValidationError) that the gateway maps to gRPC
// statuses with stable reasons.
package policy

import (
	"errors"
	"slices"
)

// Sentinel errors. Functions wrap them with context; callers test for them
// with errors.Is.
var (
	// ErrUnknownSIPZone reports a SIP zone the topology does not map to a
	// region. The gateway answers it with reason UNKNOWN_SIP_ZONE.
	ErrUnknownSIPZone = errors.New("policy: unknown SIP zone")
	// ErrUnknownRegion reports a valid region code that this deployment
	// has no bucket for. The gateway answers it with FAILED_PRECONDITION
	// and reason UNKNOWN_REGION.
	ErrUnknownRegion = errors.New("policy: unknown region")
	// ErrAccountNotFound reports an account whose settings were never
	// written: such an account does not exist.
	ErrAccountNotFound = errors.New("policy: account not found")
)

// Regions lists every long-term storage region code sealgate knows, whether
// or not a deployment configures it. Callers must not modify it.
var Regions = []string{"us", "au", "br", "ca", "de", "jp", "mx", "sg"}

// IsRegion reports whether r is one of the region codes in Regions. The
// comparison is exact: codes are lower case.
func IsRegion(r string) bool {
	return slices.Contains(Regions, r)
}

// DefaultSIPZones returns a new map of the SIP zones of the embedded default
// topology, each mapped to the region whose bucket stages its uploads.
func DefaultSIPZones() map[string]string {
	return map[string]string{
		"us-west": "us",
		"us-east": "us",
		"au-syd":  "au",
		"br-sao":  "br",
		"ca-tor":  "ca",
		"de-fra":  "de",
		"jp-tyo":  "jp",
		"mx-mex":  "mx",
		"sg-sin":  "sg",
	}
}
