package config

import (
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
	"github.com/sealgate/sealgate/keys/local"
	"github.com/sealgate/sealgate/keys/vaulttransit"
)

// registerDrivers makes every key driver serve its scheme in kr and returns
// the schemes accepted for customer keys.
func registerDrivers(kr *keys.Keyring, c *Config) []string {
	kr.Register(local.Scheme, local.Opener{Dir: c.Keys.LocalDir})
	// AWS KMS through the SDK's default chain (AWS_REGION, credentials,
	// AWS_ENDPOINT_URL_KMS); one client per region named in key ARNs.
	kr.Register(awskms.Scheme, &awskms.Opener{})
	// Vault Transit with VAULT_TOKEN, and VAULT_ADDR's scheme and TLS
	// settings for its host; other hosts use keys.vault_scheme.
	kr.Register(vaulttransit.Scheme, &vaulttransit.Opener{Scheme: c.Keys.VaultScheme})
	schemes := []string{local.Scheme, awskms.Scheme, vaulttransit.Scheme}
	for scheme, o := range c.ExtraDrivers {
		kr.Register(scheme, o)
		schemes = append(schemes, scheme)
	}
	return schemes
}
