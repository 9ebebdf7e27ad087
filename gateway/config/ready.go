package config

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Ready checks what this process needs to serve: every region's store and
// the control store answer a one-object listing, and the provider key is
// usable. It returns the first problem found.
func (rt *Runtime) Ready(ctx context.Context) error {
	var errs []error
	for _, r := range rt.Topology.Regions() {
		b, err := rt.Topology.Bucket(r)
		if err == nil {
			_, err = b.List(ctx, "settings/", "", 1)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("region %s: %w", r, err))
		}
	}
	if _, err := rt.Lifecycle.Bucket().List(ctx, "settings/", "", 1); err != nil {
		errs = append(errs, fmt.Errorf("control store: %w", err))
	}
	if _, err := rt.Keyring.Wrapper(ctx, rt.Config.Keys.ProviderKeyURI); err != nil {
		errs = append(errs, fmt.Errorf("provider key: %w", err))
	}
	return errors.Join(errs...)
}

// ReportReadiness sets hs to SERVING while Ready succeeds and NOT_SERVING
// while it fails, checking every interval until ctx ends; a load balancer's
// gRPC health check then sends calls only to replicas that can serve them.
// Shutdown (draining) is hs.Shutdown's.
func (rt *Runtime) ReportReadiness(ctx context.Context, hs *health.Server, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := rt.Ready(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if st != last {
			if err != nil {
				rt.Logger.Warn("not ready: reporting NOT_SERVING", "err", err)
			} else {
				rt.Logger.Info("ready: reporting SERVING")
			}
			for _, svc := range []string{"", "sealgate.v1.ArtifactService", "sealgate.v1.AccountService", "sealgate.v1.KeyService"} {
				hs.SetServingStatus(svc, st)
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
