package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Defaults of the global flags and the environment variables that override
// them.
const (
	defaultAddr      = "127.0.0.1:7443"
	defaultTokenFile = ".sealgate/dev-token"
	defaultTimeout   = 30 * time.Second

	envAddr       = "SEALGATE_ADDR"
	envToken      = "SEALGATE_TOKEN"
	envTokenFile  = "SEALGATE_TOKEN_FILE"
	envTLS        = "SEALGATE_TLS"
	envCACert     = "SEALGATE_CA_CERT"
	envClientCert = "SEALGATE_CLIENT_CERT"
	envClientKey  = "SEALGATE_CLIENT_KEY"
)

// globalFlags are the connection flags every subcommand accepts.
type globalFlags struct {
	fs        *flag.FlagSet
	getenv    func(string) string
	addr      string
	token     string
	tokenFile string
	account   string
	timeout   time.Duration
	tls       bool
	caCert    string
	cert, key string
}

// newFlagSet returns the flag set of the subcommand cmd with the global
// flags registered on it. synopsis is the first line of its usage text.
func (a *app) newFlagSet(cmd, synopsis string) (*flag.FlagSet, *globalFlags) {
	fs := flag.NewFlagSet("sealctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sealctl %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	g := &globalFlags{fs: fs, getenv: a.getenv}
	fs.StringVar(&g.addr, "addr", envOr(a.getenv, envAddr, defaultAddr),
		"gateway `address` host:port (env "+envAddr+")")
	fs.StringVar(&g.token, "token", "", "bearer `token` (env "+envToken+")")
	fs.StringVar(&g.tokenFile, "token-file", envOr(a.getenv, envTokenFile, defaultTokenFile),
		"`file` holding the token, read when no token is given (env "+envTokenFile+")")
	fs.StringVar(&g.account, "account", "", "account `id` (default: the token's account claim)")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "deadline of each unary call (0: none)")
	fs.BoolVar(&g.tls, "tls", envOr(a.getenv, envTLS, "") == "1",
		"use TLS (required for a non-loopback address; env "+envTLS+"=1)")
	fs.StringVar(&g.caCert, "ca-cert", envOr(a.getenv, envCACert, ""),
		"PEM `file` of the CAs that sign the gateway's certificate, instead of the system roots; implies --tls (env "+envCACert+")")
	fs.StringVar(&g.cert, "client-cert", envOr(a.getenv, envClientCert, ""), "client certificate `file` for mutual TLS (env "+envClientCert+")")
	fs.StringVar(&g.key, "client-key", envOr(a.getenv, envClientKey, ""), "client key `file` for mutual TLS (env "+envClientKey+")")
	return fs, g
}

// envOr returns the environment variable key, or def when it is unset or
// empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// parseArgs parses args with fs, allowing flags after positional arguments
// as in `read NAME -o FILE`. Everything after "--" is positional. It returns
// the positional arguments, flag.ErrHelp for -h, or errFlagParse when the
// flag package has reported a bad flag.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errFlagParse
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// fs.Parse stops at the first non-flag argument, or after a "--"
		// that it consumes; in that case everything left is positional.
		if consumedDashDash(args, rest) {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// consumedDashDash reports whether fs.Parse(args) stopped at a "--" that
// it removed, leaving rest.
func consumedDashDash(args, rest []string) bool {
	i := len(args) - len(rest)
	return i > 0 && args[i-1] == "--"
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// resolveToken returns the bearer token: --token, else the file named by an
// explicit --token-file, else $SEALGATE_TOKEN, else the file named by
// $SEALGATE_TOKEN_FILE or the default token file. It returns an error when
// the token file cannot be read or is empty.
func (g *globalFlags) resolveToken() (string, error) {
	if g.token != "" {
		return g.token, nil
	}
	if !isSet(g.fs, "token-file") {
		if t := strings.TrimSpace(g.getenv(envToken)); t != "" {
			return t, nil
		}
	}
	b, err := os.ReadFile(g.tokenFile)
	if err != nil {
		return "", fmt.Errorf("no token: pass --token, set %s, or point --token-file at a token file: %w", envToken, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("no token: token file %s is empty", g.tokenFile)
	}
	return t, nil
}

// jwtAccount returns the "account" claim of a JWT. It decodes the payload
// without verifying the signature: the gateway verifies the token, and the
// claim is only used to build resource names.
func jwtAccount(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a JWT: pass --account")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("token payload is not base64url: %w", err)
	}
	var claims struct {
		Account string `json:"account"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", fmt.Errorf("token payload is not a JSON object: %w", err)
	}
	if claims.Account == "" {
		return "", errors.New("token has no account claim: pass --account")
	}
	return claims.Account, nil
}

// artifactName returns the resource name of the artifact arg names: arg
// itself when it is a resource name, else "accounts/{account}/artifacts/{arg}".
func artifactName(account, arg string) string {
	if strings.Contains(arg, "/") {
		return arg
	}
	return "accounts/" + account + "/artifacts/" + arg
}

// needsAccount reports whether arg is a bare artifact id, which needs the
// account to become a resource name.
func needsAccount(arg string) bool { return !strings.Contains(arg, "/") }
