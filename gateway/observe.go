package gateway

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/keys"
)

// Metrics are the gateway's Prometheus collectors.
type Metrics struct {
	// KeyCalls counts calls to key encryption keys (KMS, Vault, local) by
	// operation, key URI scheme and outcome.
	KeyCalls *prometheus.CounterVec
	// Uploads and Reads count finished calls by outcome.
	Uploads *prometheus.CounterVec
	Reads   *prometheus.CounterVec
}

// NewMetrics registers the gateway's collectors on reg (nil: a new registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		KeyCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealgate_key_calls_total",
			Help: "Calls to key encryption keys (KMS Encrypt/Decrypt, Vault Transit, local keysets).",
		}, []string{"op", "scheme", "outcome"}),
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealgate_uploads_total", Help: "Finished UploadArtifact calls.",
		}, []string{"outcome"}),
		Reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealgate_reads_total", Help: "Finished ReadArtifact calls.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.KeyCalls, m.Uploads, m.Reads)
	return m
}

// outcome classifies an error, internal or already a status, for metrics
// and audit events.
func outcome(err error) string {
	switch {
	case err == nil:
		return audit.OutcomeOK
	case errors.Is(err, keys.ErrKeyRevoked):
		return audit.OutcomeRevoked
	case errors.Is(err, keys.ErrKeyUnavailable):
		return audit.OutcomeUnavailable
	}
	if _, ok := status.FromError(err); ok {
		switch errorReasonOf(err) {
		case ReasonKeyRevoked:
			return audit.OutcomeRevoked
		case ReasonKeyServiceUnavailable:
			return audit.OutcomeUnavailable
		}
	}
	return audit.OutcomeError
}

// KeyObserver returns the KeyCache observer that counts every KEK call in m
// and records it in sink.
func KeyObserver(m *Metrics, sink audit.Sink) func(keys.KeyEvent) {
	return func(e keys.KeyEvent) {
		o := outcome(e.Err)
		if m != nil {
			m.KeyCalls.WithLabelValues(e.Op, keys.Scheme(e.KeyURI), o).Inc()
		}
		kind := audit.KindKeyWrap
		if e.Op == "unwrap" {
			kind = audit.KindKeyUnwrap
		}
		sink.Record(audit.Event{Kind: kind, Account: e.Account, KeyURIs: []string{e.KeyURI}, Outcome: o})
	}
}

// record writes an audit event about an artifact for the caller in ctx.
func (g *Gateway) record(ctx context.Context, kind, account, artifact string, keyURIs []string, err error) {
	e := audit.Event{Kind: kind, Account: account, Artifact: artifact, KeyURIs: keyURIs, Outcome: outcome(err)}
	if p, ok := auth.FromContext(ctx); ok {
		e.Actor = p.Subject
	}
	if err != nil && e.Outcome == audit.OutcomeError {
		e.Detail = errorReasonOf(err)
	}
	g.audit.Record(e)
}
