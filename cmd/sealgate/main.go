// Command sealgate is the sealgate server: `sealgate serve` runs the gRPC
// gateway. With no --config it runs on the embedded defaults: a file store
// under --data-dir, a local provider key, and a dev account "demo" whose token
// is written to <data-dir>/dev-token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/layout"
)

const usage = `usage: sealgate serve [--config FILE] [--listen ADDR] [--data-dir DIR] [--roles api,mover]
       sealgate mover [--config FILE] [--data-dir DIR]
       sealgate sweeper [--config FILE] [--data-dir DIR]
       sealgate token issue --account ACCOUNT --roles ROLE[,ROLE] [--ttl DURATION] [--subject NAME] [--config FILE | --data-dir DIR]
       sealgate init [--config FILE | --data-dir DIR]
       sealgate check-config --config FILE
       sealgate version

Commands:
  serve         run the gRPC gateway and the mover (embedded defaults when --config is not given)
  mover         run only the mover, which carries staged ciphertext to storage regions
  sweeper       run only the sweeper, which expires and purges content on time
  token         issue a signed bearer token for an account and roles
  init          create the keys a new deployment needs (never replaces one)
  check-config  validate a config file and the files it names, without serving
  version       print the version
`

// version is set at build time with -ldflags "-X main.version=..."; the
// module version of the build is used otherwise.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// errUsage means the command line was wrong; the usage was printed.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status: 0, 1 for a
// failure, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "sealgate", versionString())
		return 0
	case "serve", "mover", "sweeper":
		err = serve(args[0], args[1:], stdout, stderr)
	case "token":
		err = token(args[1:], stdout, stderr)
	case "init":
		err = initCmd(args[1:], stdout, stderr)
	case "check-config":
		err = checkConfig(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "sealgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "sealgate:", ue.msg)
		return 2
	}
	fmt.Fprintln(stderr, "sealgate:", err)
	return 1
}

func serve(cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file (default: embedded defaults)")
	listen := fs.String("listen", "", "gRPC listen address (default 127.0.0.1:7443)")
	dataDir := fs.String("data-dir", "", "data directory (default .sealgate)")
	roles := fs.String("roles", "", "comma-separated roles: api, mover (default: both)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM) for the gRPC listener")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	cfg, err := configFrom(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *roles != "" {
		cfg.Roles = strings.Split(*roles, ",")
	}
	if *tlsCert != "" || *tlsKey != "" {
		cfg.TLS.CertFile, cfg.TLS.KeyFile = absPath(*tlsCert), absPath(*tlsKey)
	}
	if cmd == "mover" || cmd == "sweeper" {
		cfg.Roles = []string{cmd}
		cfg.Dev.Account = ""
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.NewLogger(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := config.Build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer rt.Close()

	if maddr, err := rt.ServeMetrics(ctx); err != nil {
		return err
	} else if maddr != "" {
		log.Info("metrics listening", "addr", "http://"+maddr+"/metrics")
	}
	moverDone := make(chan struct{})
	if rt.Mover != nil {
		if at := os.Getenv("SEALGATE_MOVER_PAUSE_AT"); at != "" {
			rt.Mover.SetHook(pauseHook(at, stdout))
		}
		go func() { defer close(moverDone); rt.Mover.Run(ctx) }()
		log.Info("mover running")
	} else {
		close(moverDone)
	}
	sweeperDone, redactorDone := make(chan struct{}), make(chan struct{})
	if rt.Sweeper != nil {
		if at := os.Getenv("SEALGATE_SWEEPER_PAUSE_AT"); at != "" {
			rt.Sweeper.SetHook(pauseHook(at, stdout))
			rt.Gateway.SetRedactHook(pauseHook(at, stdout))
		}
		go func() { defer close(sweeperDone); rt.Sweeper.Run(ctx) }()
		// The sweeper's process also redacts recordings.
		go func() { defer close(redactorDone); rt.Gateway.RunRedactor(ctx, cfg.SweepInterval) }()
		log.Info("sweeper running")
	} else {
		close(sweeperDone)
		close(redactorDone)
	}
	if at := os.Getenv("SEALGATE_UPLOAD_PAUSE_AT"); at != "" {
		rt.Gateway.SetUploadHook(pauseHook(at, stdout))
	}
	outboxDone := make(chan struct{})
	if rt.Outbox != nil {
		go func() { defer close(outboxDone); rt.Outbox.Run(ctx) }()
	} else {
		close(outboxDone)
	}
	if cfg.HasRole("api") {
		if err := serveAPI(ctx, cfg, rt, stdout); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "sealgate %s is ready\n", strings.Join(cfg.Roles, ", "))
		<-ctx.Done()
	}
	<-moverDone
	<-sweeperDone
	<-redactorDone
	<-outboxDone
	log.Info("stopped")
	return nil
}

// serveAPI serves the gRPC API until ctx ends, then drains in-flight calls
// for the grace period and cancels what is left.
func serveAPI(ctx context.Context, cfg *config.Config, rt *config.Runtime, stdout io.Writer) error {
	log := rt.Logger
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	lis = netutil.LimitListener(lis, cfg.MaxConnections)
	tlsCfg, err := cfg.ServerTLS()
	if err != nil {
		lis.Close()
		return err
	}
	var opts []grpc.ServerOption
	transport := "plaintext"
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
		transport = "TLS"
	}
	srv := gateway.NewServer(rt.Gateway, rt.Verifier, log, opts...)
	rt.Registry.MustRegister(srv.Metrics)
	// Health says SERVING only while the stores and the provider key
	// answer, and NOT_SERVING from the start of a shutdown (draining).
	readyCtx, stopReady := context.WithCancel(ctx)
	defer stopReady()
	initial := healthpb.HealthCheckResponse_SERVING
	if err := rt.Ready(ctx); err != nil {
		initial = healthpb.HealthCheckResponse_NOT_SERVING
		log.Warn("not ready: reporting NOT_SERVING", "err", err)
	}
	for _, svc := range []string{"", "sealgate.v1.ArtifactService", "sealgate.v1.AccountService", "sealgate.v1.KeyService"} {
		srv.Health.SetServingStatus(svc, initial)
	}
	go rt.ReportReadiness(readyCtx, srv.Health, cfg.ReadinessInterval)
	addr := lis.Addr().String()
	log.Info("sealgate listening", "addr", addr, "transport", transport, "data_dir", cfg.DataDir, "regions", rt.Topology.Regions())
	if cfg.Dev.Account != "" {
		if _, err := rt.EnsureDevAccount(ctx); err != nil {
			return err
		}
		security := "-plaintext"
		if tlsCfg != nil {
			security = "-cacert CA.pem"
		}
		fmt.Fprintf(stdout, "sealgate is ready on %s (%s, account %q). Try:\n"+
			"  grpcurl %s -H \"authorization: Bearer $(cat %s)\" -d '{\"parent\":\"accounts/%s\"}' %s sealgate.v1.ArtifactService/ListArtifacts\n",
			addr, transport, cfg.Dev.Account, security, cfg.Dev.TokenFile, cfg.Dev.Account, addr)
	} else {
		fmt.Fprintf(stdout, "sealgate is ready on %s (%s)\n", addr, transport)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight calls", "grace", cfg.ShutdownGrace)
	stopReady()
	srv.Health.Shutdown()
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.ShutdownGrace):
		log.Warn("grace period over: cancelling in-flight calls")
		srv.Stop()
		<-done
	}
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// pauseHook returns a mover or sweeper hook for crash tests: at the step
// named by at it prints "paused at STEP NAME" and blocks forever, so that a
// test can kill the process there. Never set SEALGATE_MOVER_PAUSE_AT or
// SEALGATE_SWEEPER_PAUSE_AT in production.
func pauseHook(at string, stdout io.Writer) func(string, layout.Ref) error {
	var mu sync.Mutex
	return func(step string, ref layout.Ref) error {
		if step != at {
			return nil
		}
		mu.Lock() // one report; the other workers block too
		fmt.Fprintf(stdout, "paused at %s %s\n", step, ref.Name())
		select {}
	}
}
