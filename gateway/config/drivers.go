package config

import (
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
	"github.com/sealgate/sealgate/keys/local"
)

// registerDrivers makes every key driver serve its scheme in kr and returns
// the schemes accepted for customer keys.
func registerDrivers(kr *keys.Keyring, c *Config) []string {
	kr.Register(local.Scheme, local.Opener{Dir: c.Keys.LocalDir})
	// AWS KMS through the SDK's default chain (AWS_REGION, credentials,
	// AWS_ENDPOINT_URL_KMS); one client per region named in key ARNs.
	kr.Register(awskms.Scheme, &awskms.Opener{})
	schemes := []string{local.Scheme, awskms.Scheme}
	for scheme, o := range c.ExtraDrivers {
		kr.Register(scheme, o)
		schemes = append(schemes, scheme)
	}
	return schemes
}
