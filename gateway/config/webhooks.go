package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/sealgate/sealgate/gateway/notify"
)

// Webhook registers a receiver of the gateway's notifications (a message
// refused by a blocking rule). Only the operator registers webhooks: a
// tenant cannot name a URL the gateway will call.
type Webhook struct {
	// Name identifies the webhook in the outbox and in logs.
	Name string `yaml:"name"`
	// URL receives a signed POST per event: https, or http on loopback.
	URL string `yaml:"url"`
	// The signing secret, from exactly one of an environment variable's
	// name or a file (at least 16 bytes).
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Accounts whose events go here; empty means every account.
	Accounts []string `yaml:"accounts"`
}

var webhookNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) validateWebhooks() error {
	var errs []error
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		where := fmt.Sprintf("webhooks[%d]", i)
		if !webhookNameRE.MatchString(w.Name) {
			errs = append(errs, fmt.Errorf("config: %s.name %q: want 1-64 letters, digits, '-' or '_'", where, w.Name))
		}
		if seen[w.Name] {
			errs = append(errs, fmt.Errorf("config: %s.name %q: used twice", where, w.Name))
		}
		seen[w.Name] = true
		u, err := url.Parse(w.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			errs = append(errs, fmt.Errorf("config: %s.url %q: want https://HOST/PATH", where, w.URL))
		case u.Scheme == "http" && !loopbackHost(u.Hostname()):
			errs = append(errs, fmt.Errorf("config: %s.url %q: plain http only to a loopback address; use https", where, w.URL))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("config: %s.url: no credentials in the URL; the body is signed with the secret", where))
		}
		if (w.SecretEnv == "") == (w.SecretFile == "") {
			errs = append(errs, fmt.Errorf("config: %s: give one of secret_env, secret_file", where))
		}
	}
	return errors.Join(errs...)
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// webhooks reads the secrets of the configured webhooks.
func (c *Config) webhooks() ([]notify.Webhook, error) {
	var out []notify.Webhook
	for _, w := range c.Webhooks {
		var secret string
		if w.SecretEnv != "" {
			secret = os.Getenv(w.SecretEnv)
		} else {
			b, err := os.ReadFile(w.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("config: webhook %s: secret: %w", w.Name, err)
			}
			secret = strings.TrimSpace(string(b))
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("config: webhook %s: the secret (%s%s) is missing or shorter than 16 bytes", w.Name, w.SecretEnv, w.SecretFile)
		}
		out = append(out, notify.Webhook{Name: w.Name, URL: w.URL, Secret: []byte(secret), Accounts: w.Accounts})
	}
	return out, nil
}
