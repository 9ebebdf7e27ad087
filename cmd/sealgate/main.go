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
	"syscall"
	"time"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/config"
)

const usage = `usage: sealgate serve [--config FILE] [--listen ADDR] [--data-dir DIR]

Commands:
  serve    run the gRPC gateway (embedded defaults when --config is not given)
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "sealgate:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "sealgate: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file (default: embedded defaults)")
	listen := fs.String("listen", "", "gRPC listen address (default 127.0.0.1:7443)")
	dataDir := fs.String("data-dir", "", "data directory (default .sealgate)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg *config.Config
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		cfg = c
	} else {
		cfg = &config.Config{Dev: config.Dev{Account: "demo"}}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
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

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := gateway.NewServer(rt.Gateway, rt.Verifier, log)
	addr := lis.Addr().String()
	if maddr, err := rt.ServeMetrics(ctx); err != nil {
		return err
	} else if maddr != "" {
		log.Info("metrics listening", "addr", "http://"+maddr+"/metrics")
	}
	log.Info("sealgate listening", "addr", addr, "data_dir", cfg.DataDir, "regions", rt.Topology.Regions())
	if cfg.Dev.Account != "" {
		if _, err := rt.EnsureDevAccount(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sealgate is ready on %s (account %q). Try:\n"+
			"  grpcurl -plaintext -H \"authorization: Bearer $(cat %s)\" -d '{\"parent\":\"accounts/%s\"}' %s sealgate.v1.ArtifactService/ListArtifacts\n",
			addr, cfg.Dev.Account, cfg.Dev.TokenFile, cfg.Dev.Account, addr)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight calls", "grace", cfg.ShutdownGrace)
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
	log.Info("stopped")
	return nil
}
