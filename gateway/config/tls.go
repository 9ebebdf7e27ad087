package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
)

// ServerTLS returns the TLS configuration of the gRPC listener, or nil when
// TLS is off. The certificate, key and client CAs are read again whenever
// one of their files changes, for new connections; connections already open
// keep theirs. It returns an error when the files cannot be loaded now.
func (c *Config) ServerTLS() (*tls.Config, error) {
	if !c.TLS.Enabled() {
		return nil, nil
	}
	r := &tlsReloader{files: c.TLS}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.current() },
	}, nil
}

// tlsReloader keeps the listener's TLS configuration in step with its files.
type tlsReloader struct {
	files TLS

	mu      sync.Mutex
	stamp   string // modification times and sizes of the files loaded
	cfg     *tls.Config
	lastErr error
}

// current returns the configuration for a new connection, reloading the
// files when they changed. A reload that fails (a certificate replaced but
// its key not yet) keeps serving the last good configuration.
func (r *tlsReloader) current() (*tls.Config, error) {
	stamp := r.stampNow()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg != nil && stamp == r.stamp {
		return r.cfg, nil
	}
	cfg, err := r.load()
	if err != nil {
		r.lastErr = err
		if r.cfg != nil {
			return r.cfg, nil
		}
		return nil, err
	}
	r.cfg, r.stamp, r.lastErr = cfg, stamp, nil
	return cfg, nil
}

func (r *tlsReloader) stampNow() string {
	s := ""
	for _, p := range []string{r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
		} else {
			s += p + ":missing;"
		}
	}
	return s
}

func (r *tlsReloader) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("config: tls: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	if r.files.ClientCAFile != "" {
		pem, err := os.ReadFile(r.files.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("config: tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config: tls.client_ca_file %s: no PEM certificate", r.files.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
